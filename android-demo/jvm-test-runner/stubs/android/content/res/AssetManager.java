package android.content.res;
public class AssetManager { public java.io.InputStream open(String n) { return null; } public AssetFileDescriptor openFd(String n) { return null; } }
