import BatonComm
import BatonCPU
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonVision
import Foundation
import XCTest

/// Every method over a video prompt on CPU ranks with the tiny Qwen2.5-VL fixture: the exact
/// methods, and APB and Spava with nothing compressed away, give dense's greedy tokens; frame-parallel
/// encoding gives the one-rank tower's embeddings.
final class VideoParallelGenerationTests: XCTestCase {
    static let engine: Engine = {
        try! Engine.load(EngineOptions(modelDirectory: VideoGenerationTests.model, showProgress: false))
    }()
    static var model: VisionLanguageModel { engine.visionLanguage! }
    static let tokens = 6
    /// `<|video_pad|>` of the fixture.
    static var videoPad: Int {
        guard case .qwen2VL(let config) = model.config else { fatalError("the fixture is Qwen2.5-VL") }
        return config.videoTokenId
    }

    /// A 5 s clip at 112x112 in the chat prompt: 10 sampled frames, 5 temporal units of 4x4 merge units
    /// (four 2x2 windows each), 80 visual tokens after the chat prefix (30 tokens with this tokenizer).
    func videoPrompt() throws -> (prompt: [Int32], sources: [VisualSource]) {
        let clip = try makeClip(size: "112x112", seconds: 5)
        let sources = try VisualSource.plan(
            videos: [clip], images: [],
            options: VideoOptions(minPixels: 12544, maxPixels: 12544),
            processor: .qwen(QwenProcessorConfig()))
        XCTAssertEqual(sources.map(\.tokenCount), [80])
        let prompt = try VisualPromptEncoding.encode(
            question: "What is in this video? Describe it.", items: sources.map(\.item),
            tokenizer: Self.engine.tokenizer!,
            config: Self.model.config)
        return (prompt, sources)
    }

    /// The request `baton generate --video` makes: dense takes the prompt as one block, the other
    /// methods split it after the last `<|vision_end|>`. No stop ids: all `tokens` are compared.
    func request(
        _ method: Method, ranks: Int, plan: PlanOptions = PlanOptions(), prompt: [Int32],
        visuals: VisualPrefill
    ) throws -> ParallelRequest {
        let (context, query) =
            method == .dense
            ? (prompt, []) : try VisualPromptEncoding.splitQuery(prompt, config: Self.model.config)
        var request = ParallelRequest(
            context: context, query: query, method: method, ranks: ranks, plan: plan,
            generation: GenerationOptions(maxTokens: Self.tokens))
        request.visuals = visuals
        return request
    }

    func generate(
        _ method: Method, ranks: Int, plan: PlanOptions = PlanOptions(), prompt: [Int32],
        visuals: VisualPrefill
    ) throws -> [Int32] {
        try Self.engine.run(request(method, ranks: ranks, plan: plan, prompt: prompt, visuals: visuals)).tokens
    }

    /// Dense on one rank from pixels preprocessed up front (as `baton generate` does on one rank),
    /// checked against VisionLanguageModel's own prefill and decode (the tower over everything, M-RoPE of
    /// the whole prompt), which share no code with the ranks' path.
    func denseTokens(_ prompt: [Int32], _ sources: [VisualSource]) throws -> [Int32] {
        let inputs = try sources.map { try BatonModels.VisualInput($0.preprocess(), backend: Self.engine.backend) }
        let dense = try generate(.dense, ranks: 1, prompt: prompt, visuals: VisualPrefill(visuals: inputs))
        let direct = try Self.engine.visualGreedyTwoWays(tokens: prompt, visuals: inputs, maxTokens: Self.tokens).direct
        XCTAssertEqual(dense, direct)
        XCTAssertEqual(dense.count, Self.tokens)
        XCTAssertGreaterThan(Set(dense).count, 1, "a degenerate model would make the comparison vacuous")
        return dense
    }

    /// A share cut into chunks (the tower on chunk k while chunk k+1's frames are decoded): balanced
    /// runs of units in order, pieces split where a chunk ends, none lost.
    func testChunksCutTheShareIntoBalancedRunsInOrder() throws {
        let items = [
            VisualItem(kind: .video, grid: VisionGrid(t: 7, h: 4, w: 4)),
            VisualItem(kind: .image, grid: VisionGrid(t: 3, h: 2, w: 2))
        ]
        let share = VisualShare.split(items, parts: 1, mergeUnit: 4)[0]
        let chunks = VisualPrefill.chunks(share.pieces, count: 4, minimumRows: 1)
        XCTAssertEqual(chunks.map { $0.reduce(0) { $0 + $1.units.count } }, [3, 3, 2, 2])
        XCTAssertEqual(chunks.flatMap { $0.map(\.item) }, [0, 0, 0, 1, 1])
        XCTAssertEqual(chunks.flatMap { $0.map(\.units) }, [0..<3, 3..<6, 6..<7, 0..<1, 1..<3])
        XCTAssertEqual(chunks.flatMap { $0.map(\.grid.t) }, [3, 3, 1, 1, 2])
        XCTAssertEqual(VisualPrefill.chunks(share.pieces, count: 4, minimumRows: 1 << 20).count, 1)
        XCTAssertEqual(VisualPrefill.chunks(share.pieces, count: 1, minimumRows: 1).count, 1)
    }

    /// Dense and ring with each rank's share encoded in chunks, frames decoded ahead on a worker,
    /// give the tokens of one tower call per share.
    func testOverlappedChunkedEncodingGivesTheSameTokens() throws {
        let (prompt, sources) = try videoPrompt()
        let whole = try generate(.dense, ranks: 1, prompt: prompt, visuals: VisualPrefill(sources: sources))
        let ringWhole = try generate(.ring, ranks: 2, prompt: prompt, visuals: VisualPrefill(sources: sources))
        VisualPrefill.minimumChunkRows = 1
        defer { VisualPrefill.minimumChunkRows = 16384 }
        XCTAssertEqual(try generate(.dense, ranks: 1, prompt: prompt, visuals: VisualPrefill(sources: sources)), whole)
        XCTAssertEqual(
            try generate(.ring, ranks: 2, prompt: prompt, visuals: VisualPrefill(sources: sources)), ringWhole)
    }

    func testRingZigZagAndStarOverAVideoGiveDenseGreedyTokensWithFramesDecodedPerRank() throws {
        let (prompt, sources) = try videoPrompt()
        let dense = try denseTokens(prompt, sources)
        let perRank = VisualPrefill(sources: sources)
        for ranks in [2, 3] {
            for method in [Method.ring, .zigzag] {
                XCTAssertEqual(
                    try generate(method, ranks: ranks, prompt: prompt, visuals: perRank), dense,
                    "\(method) \(ranks)")
            }
        }
        // Star on two ranks with the whole first block as anchor sees the whole prefix: exact.
        XCTAssertEqual(try generate(.star, ranks: 2, prompt: prompt, visuals: perRank), dense, "star 2")
        // Dense on one rank decoding per share (all of it) is the same path.
        XCTAssertEqual(try generate(.dense, ranks: 1, prompt: prompt, visuals: perRank), dense, "dense from sources")
    }

    func testAPBAndSpavaKeepingEverythingGiveDenseGreedyTokensWithVideoRowsInTheAnchor() throws {
        let (prompt, sources) = try videoPrompt()
        let dense = try denseTokens(prompt, sources)
        let perRank = VisualPrefill(sources: sources)
        let context = try VisualPromptEncoding.splitQuery(prompt, config: Self.model.config).context
        let firstPad = try XCTUnwrap(prompt.firstIndex(of: Int32(Self.videoPad)))
        for ranks in [2, 3] {
            // APB is exact when its anchor fits in host 0's block and every entry is passed.
            let anchor = context.count / ranks
            XCTAssertGreaterThan(anchor, firstPad, "the anchor must hold video rows")
            var apb = PlanOptions(anchorLength: anchor, passingLength: 1000)
            apb.anchorQueryPrefix = nil
            XCTAssertEqual(
                try generate(.apb, ranks: ranks, plan: apb, prompt: prompt, visuals: perRank), dense,
                "apb \(ranks)")
            let spava = PlanOptions(anchorLength: firstPad + 5, passingLength: 1000)
            XCTAssertEqual(
                try generate(.spava, ranks: ranks, plan: spava, prompt: prompt, visuals: perRank), dense,
                "spava \(ranks)")
        }
    }

    func testApproximateSettingsRunOverAVideoIncludingAPBsQueryInsertedBeforeVideoRows() throws {
        let (prompt, sources) = try videoPrompt()
        let perRank = VisualPrefill(sources: sources)
        // The question goes into the anchor after 20 tokens of the system turn, so the anchor's video
        // rows sit at other positions than their prompt tokens'.
        let (context, query) = try VisualPromptEncoding.splitQuery(prompt, config: Self.model.config)
        let firstPad = try XCTUnwrap(prompt.firstIndex(of: Int32(Self.videoPad)))
        var inserted = PlanOptions(anchorLength: firstPad + query.count + 4, passingLength: 4)
        inserted.anchorQueryPrefix = 20
        let layout = try Plan.make(
            method: .apb, context: context, query: query, worldSize: 3,
            options: inserted
        ).ranks[1]
        let pad = Int32(Self.videoPad)
        let movedPads = layout.anchorRows.filter {
            layout.tokenIDs[$0] == pad && layout.promptIndices[$0] != layout.positions[$0]
        }
        XCTAssertFalse(movedPads.isEmpty, "the anchor must hold video rows away from their own positions")
        XCTAssertEqual(
            try generate(.apb, ranks: 3, plan: inserted, prompt: prompt, visuals: perRank).count,
            Self.tokens)
        let small = PlanOptions(anchorLength: 36, passingLength: 2)
        for method in [Method.spava, .star] {
            XCTAssertEqual(
                try generate(method, ranks: 3, plan: small, prompt: prompt, visuals: perRank).count,
                Self.tokens, "\(method)")
        }
    }

    /// The torchrun path: each rank calls `generateParallelRank` on its own (CPU threads standing in
    /// for processes), with its own Qwen2.5-VL model.
    func testEveryRankOnItsOwnGivesDenseTokensOverAVideo() throws {
        let (prompt, sources) = try videoPrompt()
        let dense = try denseTokens(prompt, sources)
        let model = Self.model
        let zigzag = try request(.zigzag, ranks: 2, prompt: prompt, visuals: VisualPrefill(sources: sources))
        let results = try runRanks(on: LocalCommunicator.group(worldSize: 2, timeout: 60)) { rank, communicator in
            try generateParallelRank(
                zigzag, rank: rank, communicator: communicator, model: model.language,
                visionLanguage: model)
        }
        XCTAssertEqual(results.map(\.tokens), [dense, dense])
    }

    func testFrameParallelEmbeddingsEqualTheOneRankTowerOn2And3Ranks() throws {
        // 112x112 frames: 4x4 merge units in four 2x2 windows per unit; a video of 4 units, then an image.
        let clip = try makeClip(size: "112x112", seconds: 4)
        let image = VideoGenerationTests.fixtures.appendingPathComponent("video/clips/testsrc.png")
        let sources = try VisualSource.plan(
            videos: [clip], images: [image],
            options: VideoOptions(minPixels: 12544, maxPixels: 12544),
            processor: .qwen(QwenProcessorConfig()))
        let model = Self.model, width = model.config.text.hiddenSize
        let inputs = try sources.map { try BatonModels.VisualInput($0.preprocess(), backend: model.backend) }
        let whole = try XCTUnwrap(model.visualEmbeddings(inputs)).floats()
        let rows = whole.count / width
        XCTAssertEqual(rows, 64 + sources[1].tokenCount)
        let visuals = VisualPrefill(sources: sources)
        for ranks in [2, 3] {
            // Rank 0 gathers every row; the others every `ranks`-th row from their own number on.
            let needs = (0..<ranks).map { r in r == 0 ? Array(0..<rows) : Array(stride(from: r, to: rows, by: ranks)) }
            let results = try runRanks(ranks) { _, communicator in
                try encodeFrameParallel(visuals, needs: needs, model: model, communicator: communicator).floats()
            }
            for (rank, got) in results.enumerated() {
                let expected = needs[rank].flatMap { whole[$0 * width..<($0 + 1) * width] }
                XCTAssertEqual(got.count, expected.count, "\(ranks) ranks, rank \(rank)")
                let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(
                    worst, 1e-4,
                    "\(ranks) ranks, rank \(rank): largest difference from the one-rank tower")
            }
        }
    }

    /// What `baton selftest --model Tests/Fixtures/tiny-qwen2-vl --ranks N` checks on the GPU, on CPU
    /// ranks: the fixture's image-and-video prompt, both items split over the ranks' shares.
    func testFixturesImageAndVideoPromptGivesDenseTokensThroughRingAndZigZag() throws {
        let prompt = try Qwen2VLFixtureInputs.richestPrompt(directory: VideoGenerationTests.model)
        XCTAssertEqual(prompt.visuals.map(\.item.kind), [.image, .video])
        for ranks in [2, 3] {
            let rows = try MethodAgreementCheck(directory: VideoGenerationTests.model, device: .cpu, ranks: ranks)
                .run(promptIds: prompt.tokens, maxTokens: 8, methods: [.ring, .zigzag], visuals: prompt.visuals)
            for row in rows { XCTAssertEqual(row.matchesDense, row.total, "\(row.method) on \(ranks) ranks") }
        }
    }

    func testVisualSharesSplitTemporalUnitsContiguouslyAcrossItems() {
        let video = VisualItem(kind: .video, grid: VisionGrid(t: 4, h: 4, w: 8))  // 8 tokens per unit
        let image = VisualItem(kind: .image, grid: VisionGrid(t: 1, h: 2, w: 2))  // 1 token
        let shares = VisualShare.split([video, image], parts: 3, mergeUnit: 4)
        XCTAssertEqual(shares.map(\.rows), [0..<16, 16..<32, 32..<33])
        XCTAssertEqual(shares[1].pieces.map(\.units), [2..<4])
        XCTAssertEqual(shares[2].pieces.map(\.item), [1])
        let two = VisualShare.split([video, image], parts: 2, mergeUnit: 4)
        XCTAssertEqual(two[1].pieces.map(\.item), [0, 1], "the second share ends the video and holds the image")
        XCTAssertEqual(two[1].pieces.map(\.grid), [VisionGrid(t: 1, h: 4, w: 8), VisionGrid(t: 1, h: 2, w: 2)])
        // More ranks than units: the last ranks encode nothing.
        XCTAssertEqual(VisualShare.split([image], parts: 2, mergeUnit: 4).map(\.rows), [0..<1, 1..<1])
    }
}
