package android.view;
public class View {
  public static final int VISIBLE = 0, GONE = 8;
  public interface OnClickListener { void onClick(View v); }
  public View(android.content.Context c) {}
  public void setVisibility(int v) {} public int getVisibility() { return 0; }
  public void setPadding(int a, int b, int c, int d) {}
  public void setOnClickListener(OnClickListener l) {}
  public interface OnApplyWindowInsetsListener { WindowInsets onApplyWindowInsets(View v, WindowInsets insets); }
  public void setOnApplyWindowInsetsListener(OnApplyWindowInsetsListener l) {}
}
