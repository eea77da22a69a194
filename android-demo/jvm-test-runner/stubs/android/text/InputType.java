package android.text;
public class InputType { public static final int TYPE_CLASS_TEXT = 1, TYPE_TEXT_FLAG_MULTI_LINE = 0x20000, TYPE_CLASS_NUMBER = 2; }
