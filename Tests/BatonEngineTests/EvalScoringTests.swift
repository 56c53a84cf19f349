@testable import BatonEngine
import Foundation
import XCTest

final class EvalScoringTests: XCTestCase {
    func testStringMatchAllScoresExactPartialCaseAndMissingAnswers() {
        XCTAssertEqual(RulerScore.stringMatchAll(prediction: " 1234567.", references: ["1234567"]), 1)
        XCTAssertEqual(
            RulerScore.stringMatchAll(prediction: "11, 22 and 99", references: ["11", "22", "33", "44"]), 0.5)
        XCTAssertEqual(RulerScore.stringMatchAll(prediction: "QUIET-HARBOR", references: ["quiet-harbor"]), 1)
        XCTAssertEqual(RulerScore.stringMatchAll(prediction: "I do not know.", references: ["1234567"]), 0)
        XCTAssertEqual(RulerScore.stringMatchAll(prediction: "", references: ["1"]), 0)
        XCTAssertEqual(
            RulerScore.stringMatchAll(prediction: "123456", references: ["1234567"]), 0, "a prefix is not a match")
    }

    func testStringMatchPartCountsAnyReference() {
        XCTAssertEqual(RulerScore.stringMatchPart(prediction: "Paris", references: ["paris", "London"]), 1)
        XCTAssertEqual(RulerScore.stringMatchPart(prediction: "Rome", references: ["Paris", "London"]), 0)
    }

    func testPostprocessTurnsControlCharactersIntoNewlinesAndTrims() {
        XCTAssertEqual(RulerScore.postprocess("\t AB\u{1}CD \n"), "AB\nCD")
        // A reference split by a control character no longer matches, as in RULER.
        XCTAssertEqual(RulerScore.stringMatchAll(prediction: "12\u{0}34", references: ["1234"]), 0)
    }

    func testRunnerScoresEveryAnswerAndAveragesCellsInPercent() throws {
        let samples = try EvalSuite.passKeySamples(
            lengths: [512, 1024], depths: [0, 1], samples: 2, seed: 2,
            count: whitespaceCount)
        // A model that finds the pass key only when the needle is at the start.
        let predictions = try EvalRunner.run(samples, method: "dense") { prompt in
            let needleFirst = prompt.user.hasPrefix(PassKeyNIAH.instruction + "The pass key is ")
            let key = prompt.user.components(separatedBy: "The pass key is ")[1].prefix(12)
            return needleFirst ? "\(key). Remember it." : "unknown"
        }
        XCTAssertEqual(predictions.count, 8)
        let cells = EvalRunner.cells(predictions)
        XCTAssertEqual(cells.count, 4)
        for cell in cells { XCTAssertEqual(cell.accuracy, cell.depth == 0 ? 100 : 0, "\(cell)") }

        let report = EvalReport(
            benchmark: "niah", model: "test", seed: 2, lengths: [512, 1024], depths: [0, 1],
            predictions: predictions)
        let table = report.markdown()
        XCTAssertTrue(table.contains("| depth | 512 | 1K |"), table)
        XCTAssertTrue(table.contains("| 0% | 100.0 | 100.0 |"), table)
        XCTAssertTrue(table.contains("| 100% | 0.0 | 0.0 |"), table)
        XCTAssertTrue(table.contains("| **average** | 50.0 | 50.0 |"), table)
        let decoded = try JSONDecoder().decode(EvalReport.self, from: report.jsonData())
        XCTAssertEqual(decoded.cells, report.cells)
        XCTAssertEqual(decoded.predictions, predictions)
    }

    func testRunnerPassesTheTaskBudgetAndPrefixToTheModel() throws {
        let samples = try EvalSuite.rulerSamples(
            tasks: ["vt", "cwe", "fwe", "niah_single_1"], lengths: [2048],
            samples: 1, seed: 0, count: whitespaceCount)
        var seen: [Int] = []
        _ = try EvalRunner.run(samples, method: "dense") { prompt in
            seen.append(prompt.maxNewTokens)
            XCTAssertTrue(prompt.addGenerationPrompt)
            XCTAssertTrue(prompt.continuation.hasPrefix(" "), "RULER's answer prefixes start with a space")
            return ""
        }
        XCTAssertEqual(seen, [30, 120, 50, 128])
    }

    func testRulerTableHasATaskRowPerTaskAndAnAverageRow() throws {
        let samples = try EvalSuite.rulerSamples(
            tasks: ["vt", "fwe"], lengths: [2048, 4096], samples: 1, seed: 0,
            count: whitespaceCount)
        // Answers every vt sample fully and no fwe sample.
        let predictions = try EvalRunner.run(samples, method: "star") { prompt in
            prompt.continuation.contains("variables") ? prompt.user : ""
        }
        let report = EvalReport(
            benchmark: "ruler", model: "test", seed: 0, lengths: [2048, 4096], depths: nil,
            predictions: predictions)
        let table = report.markdown()
        XCTAssertTrue(table.contains("## star\n\n| task | 2K | 4K |"), table)
        XCTAssertTrue(table.contains("| vt | 100.0 | 100.0 |"), table)
        XCTAssertTrue(table.contains("| fwe | 0.0 | 0.0 |"), table)
        XCTAssertTrue(table.contains("| **average** | 50.0 | 50.0 |"), table)
    }
}
