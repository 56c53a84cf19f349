// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "baton", targets: ["baton"]),
        .library(name: "Baton", targets: ["BatonEngine"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `baton serve`: the HTTP server and its /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // SHA-256 of image and video files: the key of serve's visual-embedding cache.
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0")
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
        // resizing and patchifying as Qwen2-VL's processor and InternVL3's loader do.
        .target(name: "BatonVision", dependencies: ["BatonTensor"]),
        .target(name: "BatonParallel", dependencies: ["BatonTensor", "BatonComm"]),
        .target(
            name: "BatonEngine",
            dependencies: [
                "BatonTensor", "BatonCPU", "BatonCUDA", "BatonComm", "BatonNCCL", "BatonModels", "BatonTokenizer",
                "BatonParallel", "BatonVision"
            ],
            resources: [
                .embedInCode("Resources/fetch_model.py"), .embedInCode("Resources/torch_prefill.py"),
                .embedInCode("Resources/torch_video.py")
            ]),
        // `baton serve`: the OpenAI-compatible HTTP API over one Engine.
        .target(
            name: "BatonServer",
            dependencies: [
                "BatonEngine", "BatonTokenizer", "BatonParallel", "BatonTensor", "BatonModels", "BatonVision",
                "BatonComm", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto")
            ]),
        .executableTarget(
            name: "baton",
            dependencies: [
                "BatonEngine", "BatonServer", "BatonComm", "BatonCUDA", "BatonNCCL", "BatonModels", "BatonTokenizer",
                "BatonParallel", "BatonTensor", "BatonVision",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
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
            dependencies: [
                "BatonEngine", "BatonCPU", "BatonModels", "BatonTokenizer", "BatonParallel", "BatonTensor",
                "BatonVision"
            ]),
        .testTarget(
            name: "BatonServerTests",
            dependencies: [
                "BatonServer", "BatonEngine", "BatonParallel", "BatonTensor", "BatonTokenizer", "BatonVision",
                "BatonComm", .product(name: "HummingbirdTesting", package: "hummingbird")
            ],
            exclude: ["openai_client.py"])
    ],
    swiftLanguageModes: [.v6]
)
