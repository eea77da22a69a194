package android.graphics;
// API-29 shim (see ../view/WindowInsets.java): not in the API-23 android.jar.
public final class Insets {
  public final int left, top, right, bottom;
  private Insets() { throw new RuntimeException("Stub!"); }
}
