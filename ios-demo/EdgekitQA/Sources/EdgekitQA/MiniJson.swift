/// A small JSON reader for golden.json and the model card (mirrors android-demo MiniJson.kt), so the
/// package parses the same way on Apple platforms and on Linux (no JSONSerialization bridging).
/// Objects become [String: Any], arrays [Any], numbers Double, plus String, Bool and JSONNull.
public struct JSONNull: Equatable { public init() {} }

public enum MiniJson {
    public static func parse(_ text: String) throws -> Any {
        var p = Parser(bytes: Array(text.utf8))
        p.ws()
        let v = try p.value()
        p.ws()
        if p.i != p.bytes.count { throw p.fail("trailing characters") }
        return v
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        func fail(_ msg: String) -> QaError { QaError.message("bad JSON at offset \(i): \(msg)") }

        mutating func ws() {
            while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09) { i += 1 }
        }

        func peek() throws -> UInt8 {
            guard i < bytes.count else { throw fail("unexpected end") }
            return bytes[i]
        }

        mutating func value() throws -> Any {
            switch try peek() {
            case UInt8(ascii: "{"): return try obj()
            case UInt8(ascii: "["): return try arr()
            case UInt8(ascii: "\""): return try str()
            case UInt8(ascii: "t"): try lit("true"); return true
            case UInt8(ascii: "f"): try lit("false"); return false
            case UInt8(ascii: "n"): try lit("null"); return JSONNull()
            default: return try num()
            }
        }

        mutating func lit(_ word: String) throws {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("expected \(word)") }
            i += w.count
        }

        mutating func obj() throws -> [String: Any] {
            var m: [String: Any] = [:]
            i += 1
            ws()
            if try peek() == UInt8(ascii: "}") { i += 1; return m }
            while true {
                ws()
                guard try peek() == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let k = try str()
                ws()
                guard try peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                ws()
                m[k] = try value()
                ws()
                let c = try peek()
                i += 1
                if c == UInt8(ascii: ",") { continue }
                if c == UInt8(ascii: "}") { return m }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func arr() throws -> [Any] {
            var a: [Any] = []
            i += 1
            ws()
            if try peek() == UInt8(ascii: "]") { i += 1; return a }
            while true {
                ws()
                a.append(try value())
                ws()
                let c = try peek()
                i += 1
                if c == UInt8(ascii: ",") { continue }
                if c == UInt8(ascii: "]") { return a }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            i += 4
            return v
        }

        mutating func str() throws -> String {
            var out: [UInt8] = []
            i += 1
            while true {
                let c = try peek()
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                let e = try peek()
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    // A surrogate pair arrives as two escapes: join it into one scalar.
                    if (0xD800...0xDBFF).contains(v), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                    }
                    let scalar = Unicode.Scalar(v) ?? Unicode.Scalar(UInt32(0xFFFD))!
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw fail("bad escape")
                }
            }
        }

        mutating func num() throws -> Double {
            let start = i
            while i < bytes.count, let c = Optional(bytes[i]),
                  (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                i += 1
            }
            guard start < i, let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else { throw fail("bad number") }
            return d
        }
    }
}

/// Typed access to parsed JSON (mirrors Kotlin's `J`).
public enum J {
    public static func obj(_ v: Any?) -> [String: Any] { v as? [String: Any] ?? [:] }
    public static func list(_ v: Any?) -> [Any] { v as? [Any] ?? [] }
    public static func str(_ v: Any?) -> String { v as? String ?? "" }
    public static func dbl(_ v: Any?) -> Double? { v as? Double }
    public static func int(_ v: Any?) -> Int? { (v as? Double).map { Int($0) } }
    public static func bool(_ v: Any?) -> Bool? { v as? Bool }
    public static func ints(_ v: Any?) -> [Int] { list(v).map { Int(($0 as? Double) ?? 0) } }
    public static func i32s(_ v: Any?) -> [Int32] { list(v).map { Int32(($0 as? Double) ?? 0) } }
    public static func floats(_ v: Any?) -> [Float] { list(v).map { Float(($0 as? Double) ?? .nan) } }
}
