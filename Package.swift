// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "baton", targets: ["baton"]),
        .library(name: "Baton", targets: ["BatonEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // CUDA driver, NVRTC, cuBLASLt and NCCL entry points, loaded with dlopen at run time.
        .target(name: "CCUDA", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "BatonTensor"),
        // CPU matrix products through a CBLAS found with dlopen at run time, else a built-in GEMM.
        .target(name: "BatonCPU", dependencies: ["BatonTensor"], linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "BatonCUDA", dependencies: ["BatonTensor", "CCUDA"],
            resources: [.embedInCode("Kernels")]),
        .target(name: "BatonComm", dependencies: ["BatonTensor", "CCUDA"]),
        // NCCLCommunicator: needs BatonComm (the protocol, the rendezvous) and BatonCUDA (streams,
        // events, the allocator), which do not depend on each other.
        .target(name: "BatonNCCL", dependencies: ["BatonComm", "BatonCUDA", "BatonTensor", "CCUDA"]),
        // tokenizer.json BPE and chat templates.
        .target(name: "BatonTokenizer", dependencies: ["BatonTensor"]),
        .target(name: "BatonModels", dependencies: ["BatonTensor"]),
        // Video and image input for vision-language models: ffmpeg/ffprobe programs, frame sampling,
        // resizing and patchifying as Qwen2-VL's processor does.
        .target(name: "BatonVision", dependencies: ["BatonTensor"]),
        .target(name: "BatonParallel", dependencies: ["BatonTensor", "BatonComm"]),
        .target(
            name: "BatonEngine",
            dependencies: ["BatonTensor", "BatonCPU", "BatonCUDA", "BatonComm", "BatonNCCL", "BatonModels", "BatonTokenizer",
                           "BatonParallel"],
            resources: [.embedInCode("Resources/fetch_model.py"), .embedInCode("Resources/torch_prefill.py")]),
        .executableTarget(
            name: "baton",
            dependencies: ["BatonEngine", "BatonComm", "BatonCUDA", "BatonNCCL", "BatonModels", "BatonTokenizer", "BatonParallel",
                           "BatonTensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "BatonTensorTests", dependencies: ["BatonTensor"]),
        .testTarget(name: "BatonVisionTests", dependencies: ["BatonVision", "BatonTensor"]),
        .testTarget(name: "BatonCPUTests", dependencies: ["BatonCPU", "BatonTensor"]),
        .testTarget(name: "BatonCUDATests", dependencies: ["BatonCUDA", "CCUDA", "BatonTensor"]),
        .testTarget(name: "BatonNCCLTests", dependencies: ["BatonNCCL", "BatonComm", "BatonCUDA", "BatonTensor"]),
        .testTarget(
            name: "BatonModelsTests", dependencies: ["BatonModels", "BatonCPU", "BatonTensor", "BatonParallel"]),
        .testTarget(name: "BatonTokenizerTests", dependencies: ["BatonTokenizer", "BatonTensor"]),
        .testTarget(
            name: "BatonParallelTests",
            dependencies: ["BatonParallel", "BatonComm", "BatonCPU", "BatonTensor", "BatonModels"]),
        .testTarget(
            name: "BatonEngineTests",
            dependencies: ["BatonEngine", "BatonCPU", "BatonModels", "BatonTokenizer", "BatonParallel", "BatonTensor"]),
    ],
    swiftLanguageModes: [.v6]
)
