package android.app;
public class Activity extends android.content.Context {
  protected void onCreate(android.os.Bundle b) {}
  protected void onDestroy() {}
  public void setContentView(android.view.View v) {}
  public void runOnUiThread(Runnable r) {}
  public android.content.res.AssetManager getAssets() { return null; }
  public java.io.File getFilesDir() { return null; }
}
