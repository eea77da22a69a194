package org.tensorflow.lite;
import java.nio.ByteBuffer;
import java.util.Map;
public class Interpreter implements AutoCloseable {
  public static class Options { public Options setNumThreads(int n) { return this; } }
  public Interpreter(ByteBuffer b, Options o) {}
  public void allocateTensors() {}
  public String[] getSignatureKeys() { return new String[0]; }
  public String[] getSignatureInputs(String k) { return new String[0]; }
  public String[] getSignatureOutputs(String k) { return new String[0]; }
  public void runSignature(Map<String, Object> in, Map<String, Object> out, String k) {}
  public int getInputTensorCount() { return 0; }
  public Tensor getInputTensor(int i) { return null; }
  public void runForMultipleInputsOutputs(Object[] in, Map<Integer, Object> out) {}
  public void close() {}
}
