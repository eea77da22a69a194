package androidx.test.ext.junit.runners;
public class AndroidJUnit4 extends org.junit.runners.BlockJUnit4ClassRunner { public AndroidJUnit4(Class<?> c) throws Exception { super(c); } }
