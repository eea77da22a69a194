package android.widget;
public class TextView extends android.view.View { public TextView(android.content.Context c) { super(c); }
  public void setText(CharSequence t) {} public CharSequence getText() { return ""; }
  public void setHint(CharSequence t) {} public CharSequence getHint() { return ""; }
  public void setMinLines(int n) {} public int getMinLines() { return 0; }
  public void setInputType(int t) {} public int getInputType() { return 0; } }
