package android.widget;
public class LinearLayout extends android.view.ViewGroup { public static final int HORIZONTAL = 0, VERTICAL = 1;
  public LinearLayout(android.content.Context c) { super(c); } public void setOrientation(int o) {} public int getOrientation() { return 0; } }
