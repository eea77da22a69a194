package android.view;
public class WindowInsets {
  public static class Type {
    public static int systemBars() { return 0; } public static int displayCutout() { return 0; } public static int ime() { return 0; }
  }
  public android.graphics.Insets getInsets(int typeMask) { return null; }
  public int getSystemWindowInsetLeft() { return 0; } public int getSystemWindowInsetTop() { return 0; }
  public int getSystemWindowInsetRight() { return 0; } public int getSystemWindowInsetBottom() { return 0; }
}
