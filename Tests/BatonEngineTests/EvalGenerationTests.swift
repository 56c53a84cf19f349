@testable import BatonEngine
import BatonTensor
import XCTest

/// A tokenizer stand-in for tests: one token per whitespace-separated word.
func whitespaceCount(_ text: String) -> Int {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).count
}

final class EvalGenerationTests: XCTestCase {
    func testSameSeedGivesIdenticalSamplesAndAnotherSeedDiffers() throws {
        for name in EvalSuite.rulerTaskNames {
            let a = try EvalSuite.rulerSamples(
                tasks: [name], lengths: [2048], samples: 2, seed: 7, count: whitespaceCount)
            let b = try EvalSuite.rulerSamples(
                tasks: [name], lengths: [2048], samples: 2, seed: 7, count: whitespaceCount)
            let c = try EvalSuite.rulerSamples(
                tasks: [name], lengths: [2048], samples: 2, seed: 8, count: whitespaceCount)
            XCTAssertEqual(a, b, name)
            XCTAssertNotEqual(a.map(\.prompt), c.map(\.prompt), name)
            XCTAssertNotEqual(a[0].prompt, a[1].prompt, "\(name): samples of one cell must differ")
        }
        let p = try EvalSuite.passKeySamples(
            lengths: [1024], depths: [0.5], samples: 2, seed: 1, count: whitespaceCount)
        let q = try EvalSuite.passKeySamples(
            lengths: [1024], depths: [0.5], samples: 2, seed: 1, count: whitespaceCount)
        XCTAssertEqual(p, q)
        XCTAssertNotEqual(p[0].references, p[1].references)
    }

    func testPassKeyNeedleSitsAtTheRequestedDepthWithinOneFillerUnit() throws {
        let samples = try EvalSuite.passKeySamples(
            lengths: [4096], depths: EvalSuite.defaultDepths, samples: 1,
            seed: 3, count: whitespaceCount)
        XCTAssertEqual(samples.count, 5)
        for sample in samples {
            let text = sample.prompt.user
            let passKey = sample.references[0]
            XCTAssertEqual(passKey.count, 12)
            XCTAssertTrue(passKey.allSatisfy(\.isNumber))
            let needle = PassKeyNIAH.needle(passKey)
            let parts = text.components(separatedBy: needle)
            XCTAssertEqual(parts.count, 2, "the needle appears exactly once")
            let before = parts[0].components(separatedBy: PassKeyNIAH.apbFiller).count - 1
            let after = parts[1].components(separatedBy: PassKeyNIAH.apbFiller).count - 1
            XCTAssertTrue(parts[0].hasPrefix(PassKeyNIAH.instruction))
            let measured = Double(before) / Double(before + after)
            let depth = try XCTUnwrap(sample.depth)
            XCTAssertEqual(measured, depth, accuracy: 1.0 / Double(before + after) + 1e-9, "depth \(depth)")
            XCTAssertEqual(sample.prompt.continuation, PassKeyNIAH.query)
            XCTAssertFalse(sample.prompt.addGenerationPrompt)
        }
    }

    func testTokenTargetingLandsWithinThreePercentBelowTheTarget() throws {
        for length in [2048, 8192] {
            var samples = try EvalSuite.rulerSamples(
                tasks: EvalSuite.rulerTaskNames, lengths: [length], samples: 2,
                seed: 11, count: whitespaceCount)
            samples += try EvalSuite.passKeySamples(
                lengths: [length], depths: [0.3], samples: 2, seed: 11,
                count: whitespaceCount)
            for sample in samples {
                let total = whitespaceCount(sample.prompt.countedText) + sample.prompt.maxNewTokens
                XCTAssertEqual(whitespaceCount(sample.prompt.countedText), sample.promptTokens, sample.task)
                XCTAssertLessThanOrEqual(total, length, "\(sample.task) at \(length)")
                XCTAssertGreaterThanOrEqual(Double(total), 0.97 * Double(length), "\(sample.task) at \(length)")
            }
        }
    }

    func testTargetTooShortForTheSmallestPromptIsAnError() {
        XCTAssertThrowsError(
            try EvalSuite.rulerSamples(
                tasks: ["vt"], lengths: [100], samples: 1, seed: 0,
                count: whitespaceCount)
        ) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .invalidArgument)
        }
    }

    func testUnknownTaskNameIsAnErrorAndAllListsElevenTasks() throws {
        XCTAssertEqual(try EvalSuite.parseTasks("all").count, 11)
        XCTAssertEqual(try EvalSuite.parseTasks("vt, cwe"), ["vt", "cwe"])
        XCTAssertThrowsError(try EvalSuite.parseTasks("niah_single_9"))
    }

    func testRulerNeedlesAreInTheContextAndAnswerTheQuery() throws {
        let expectedAnswers = [
            "niah_single_1": 1, "niah_single_2": 1, "niah_single_3": 1, "niah_multikey_1": 1,
            "niah_multikey_2": 1, "niah_multikey_3": 1, "niah_multivalue": 4, "niah_multiquery": 4
        ]
        for (name, answers) in expectedAnswers {
            let task = try XCTUnwrap(try EvalSuite.rulerTask(name, length: 4096) as? RulerNIAH)
            let sample = try ContextFitting.samples(task, length: 4096, samples: 1, seed: 5, count: whitespaceCount)[0]
            XCTAssertEqual(sample.references.count, answers, name)
            let user = sample.prompt.user
            for value in sample.references {
                // The needle "One of the special magic <kind> for <key> is: <value>." carries each answer,
                // and its key is named in the question.
                let line = try XCTUnwrap(
                    user.components(separatedBy: "\n").joined(separator: " ")
                        .components(separatedBy: "One of the special magic ").first { $0.contains("is: \(value).") },
                    name)
                let key = try XCTUnwrap(
                    line.components(separatedBy: " for ").dropFirst().first?
                        .components(separatedBy: " is: ").first)
                XCTAssertTrue(sample.prompt.continuation.contains(key), "\(name): key \(key) asked for")
                XCTAssertEqual(user.components(separatedBy: "is: \(value).").count, 2, "\(name): value appears once")
            }
            if name == "niah_multikey_1" {
                XCTAssertEqual(user.components(separatedBy: "One of the special magic numbers for ").count - 1, 4)
            }
            XCTAssertTrue(
                sample.prompt.continuation.hasSuffix(
                    answers == 1
                        ? "mentioned in the provided text is"
                        : "mentioned in the provided text are"))
            if name == "niah_single_3" { XCTAssertEqual(sample.references[0].count, 36) }
            let kind = name == "niah_single_3" || name == "niah_multikey_3" ? "uuid" : "number"
            XCTAssertTrue(
                user.hasPrefix(
                    answers == 1
                        ? "A special magic \(kind) is hidden within the following text. Make sure to memorize it. I will quiz you about the \(kind) afterwards.\n"
                        : "Some special magic \(kind)s are hidden within the following text. Make sure to memorize it. I will quiz you about the \(kind)s afterwards.\n"
                ), name)
        }
    }

    func testVariableTrackingChainResolvesToTheReferenceVariables() throws {
        for seed: UInt64 in [1, 2, 3] {
            let sample = try ContextFitting.samples(
                VariableTracking(), length: 4096, samples: 1, seed: seed,
                count: whitespaceCount)[0]
            // Only the task after the solved example: from the last occurrence of the instruction.
            let task = try XCTUnwrap(sample.prompt.user.components(separatedBy: "Memorize and track").last)
            var values: [String: String] = [:]
            var aliases: [String: String] = [:]
            // Statements read "VAR X = 12345" or "VAR Y = VAR X" amid the noise.
            let words = task.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            for i in words.indices.dropLast(3) where words[i] == "VAR" && words[i + 2] == "=" {
                if words[i + 3] == "VAR" {
                    aliases[words[i + 1]] = words[i + 4]
                } else {
                    values[words[i + 1]] = words[i + 3]
                }
            }
            func resolve(_ name: String) -> String? { values[name] ?? aliases[name].flatMap(resolve) }
            let query = try XCTUnwrap(
                task.components(separatedBy: "assigned the value ").last?.split(separator: " ").first)
            let holders = Set((Array(values.keys) + Array(aliases.keys)).filter { resolve($0) == String(query) })
            XCTAssertEqual(holders, Set(sample.references))
            XCTAssertEqual(sample.references.count, 5)
            XCTAssertTrue(sample.prompt.continuation.contains("5 variables are assgined the value \(query)"))
        }
    }

    func testCommonWordsAnswerIsTheTenMostFrequentWordsOfTheList() throws {
        for length in [2048, 8192] {
            let sample = try ContextFitting.samples(
                CommonWordsExtraction(length: length), length: length,
                samples: 1, seed: 9, count: whitespaceCount)[0]
            let list = try XCTUnwrap(
                sample.prompt.user.components(separatedBy: "appear most often.\n").last?
                    .components(separatedBy: "\nQuestion:").first)
            var counts: [String: Int] = [:]
            for item in list.split(separator: " ") where !item.hasSuffix(".") { counts[String(item), default: 0] += 1 }
            let ranked = counts.sorted { $0.value > $1.value }
            XCTAssertEqual(Set(ranked.prefix(10).map(\.key)), Set(sample.references))
            XCTAssertGreaterThan(ranked[9].value, ranked[10].value, "the top ten are strictly more frequent")
        }
    }

    func testFrequentWordsAnswerIsTheThreeMostFrequentCodedWords() throws {
        for length in [2048, 16384] {
            let sample = try ContextFitting.samples(
                FrequentWordsExtraction(length: length), length: length,
                samples: 1, seed: 4, count: whitespaceCount)[0]
            let text = try XCTUnwrap(
                sample.prompt.user.components(separatedBy: "coded words. ").dropFirst().first?
                    .components(separatedBy: "\nQuestion:").first)
            var counts: [String: Int] = [:]
            for word in text.split(separator: " ") { counts[String(word), default: 0] += 1 }
            let ranked = counts.sorted { $0.value > $1.value }
            XCTAssertEqual(ranked[0].key, "...", "the top rank is the noise word")
            XCTAssertEqual(ranked[1...3].map(\.key), sample.references)
            XCTAssertGreaterThan(ranked[3].value, ranked[4].value)
        }
    }
}
