plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "ai.edgekit.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "ai.edgekit.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    // The model is memory-mapped from the APK: it must be stored uncompressed.
    androidResources {
        noCompress.add("tflite")
    }
    sourceSets {
        // JVM unit tests read the committed golden.json + vocab.txt (written by `python -m edgekit.golden`).
        getByName("test").resources.srcDir("../../demo-golden")
    }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:1.4.1")

    testImplementation("junit:junit:4.13.2")

    androidTestImplementation("androidx.test.ext:junit:1.2.1")
    androidTestImplementation("androidx.test:runner:1.6.2")
}
