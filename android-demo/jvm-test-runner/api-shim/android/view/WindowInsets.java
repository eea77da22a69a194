package android.view;
// API-29/30 shim, ahead of the real API-23 android.jar on the compile class path (it shadows the
// real class): the API-30 getInsets/Type that MainActivity calls under SDK_INT >= 30, plus the
// API-20 getters it calls below that. Signatures as in the Android SDK; never packaged or run.
public final class WindowInsets {
  public static final class Type {
    public static int systemBars() { throw new RuntimeException("Stub!"); }
    public static int displayCutout() { throw new RuntimeException("Stub!"); }
    public static int ime() { throw new RuntimeException("Stub!"); }
  }
  public android.graphics.Insets getInsets(int typeMask) { throw new RuntimeException("Stub!"); }
  public int getSystemWindowInsetLeft() { throw new RuntimeException("Stub!"); }
  public int getSystemWindowInsetTop() { throw new RuntimeException("Stub!"); }
  public int getSystemWindowInsetRight() { throw new RuntimeException("Stub!"); }
  public int getSystemWindowInsetBottom() { throw new RuntimeException("Stub!"); }
}
