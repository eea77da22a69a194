package androidx.test.platform.app;
public class InstrumentationRegistry { public static android.app.Instrumentation getInstrumentation() { return null; } }
