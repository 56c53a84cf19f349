@testable import BatonEngine
import BatonTensor
import Foundation
import XCTest

/// The real-data eval loaders on slices of the pinned wheels (Tests/Fixtures/eval-data, cut by
/// scripts/slice_eval_data.py). Expected values come from RULER's own readers (`qa.py`, `niah.py`)
/// run in Python on the same slices.
final class EvalRealDataTests: XCTestCase {
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/eval-data")
    static let json = data.appendingPathComponent("long_context_eval/data/synthetic/json")

    func testShippedSyntheticYamlDefinesRulers13TasksWithTheirArguments() throws {
        let ruler = try RulerData(directory: Self.data.appendingPathComponent("long_context_eval"))
        XCTAssertEqual(ruler.taskNames, EvalSuite.rulerTaskNames + ["qa_1", "qa_2"])
        let multikey3 = ruler.definitions.first { $0.name == "niah_multikey_3" }!
        XCTAssertEqual(multikey3.task, "niah")
        XCTAssertEqual(multikey3.arguments["type_haystack"], "needle")
        XCTAssertEqual(multikey3.arguments["type_needle_k"], "uuids")
        XCTAssertEqual(ruler.definitions.first { $0.name == "qa_2" }?.arguments["dataset"], "hotpotqa")
        XCTAssertEqual(ruler.definitions.first { $0.name == "fwe" }?.arguments["alpha"], "2.0")
    }

    func testSyntheticYamlWithoutTaskLineIsAnErrorNamingTheTask() {
        XCTAssertThrowsError(try RulerDefinition.parse("broken:\n  args:\n    x: 1\n")) { error in
            XCTAssertTrue("\(error)".contains("'broken' has no 'task:' line"), "\(error)")
        }
    }

    func testSquadSliceReadsAsRulersReadSquad() throws {
        let squad = try RulerQA.DataSet.squad(file: Self.json.appendingPathComponent("squad.json"))
        XCTAssertEqual(squad.documents.count, 4)
        XCTAssertEqual(squad.questions.count, 14)  // answerable ones only
        XCTAssertEqual(squad.questions[0].query, "In what country is Normandy located?")
        XCTAssertEqual(squad.questions[0].answers, ["France", "France", "France", "France"])
        XCTAssertEqual(squad.questions[0].gold, [3])
        XCTAssertEqual(squad.questions[0].more, [2])
        XCTAssertEqual(squad.questions.last?.gold, [0])
        XCTAssertTrue(squad.documents[0].hasPrefix("A problem is regarded as inherently diff"))
    }

    func testHotpotQASliceReadsAsRulersReadHotpotQA() throws {
        let hotpot = try RulerQA.DataSet.hotpotQA(file: Self.json.appendingPathComponent("hotpotqa.json"))
        XCTAssertEqual(hotpot.documents.count, 30)
        XCTAssertTrue(hotpot.documents[0].hasPrefix("A Kiss for Corliss\nA Kiss for Corliss is a 1949 American com"))
        XCTAssertEqual(hotpot.questions[0].query, "Were Scott Derrickson and Ed Wood of the same nationality?")
        XCTAssertEqual(hotpot.questions[0].gold, [9, 19, 29, 26, 8, 6, 1, 23, 5, 7])
        XCTAssertEqual(hotpot.questions.map { $0.answers }, [["yes"], ["Chief of Protocol"], ["Animorphs"]])
    }

    func testEssayWordsSplitAsRulerSplitsThem() throws {
        let ruler = try EvalCorpus.rulerEssayWords(file: Self.json.appendingPathComponent("PaulGrahamEssays.json"))
        XCTAssertEqual(ruler.count, 1082)
        XCTAssertEqual(Array(ruler.prefix(3)), ["April", "2012A", "palliative"])
        XCTAssertEqual(ruler.last, "benevol")
        let needlehaystack = try EvalCorpus.needleHaystackWords(
            directory: Self.data.appendingPathComponent("PaulGrahamEssays"))
        XCTAssertEqual(needlehaystack.count, 356)
        XCTAssertEqual(Array(needlehaystack.prefix(2)), ["January", "2017People"])  // files joined as read
        XCTAssertEqual(needlehaystack.last, "list.")
    }

    func testSentencesEndAtMarksFollowedBySpaceIncludingClosingQuotes() {
        XCTAssertEqual(
            splitSentences("Hi. He said \"no.\" Then? ok 3.5 is fine"),
            ["Hi.", "He said \"no.\"", "Then?", "ok 3.5 is fine"])
    }

    func testRulerNIAHOnRealEssaysHidesTheNeedleAmongEssaySentences() throws {
        let ruler = try RulerData(directory: Self.data.appendingPathComponent("long_context_eval"))
        let task = try ruler.task("niah_single_2", length: 4096)
        let made = task.make(units: 600, seed: 7)
        XCTAssertEqual(made.references.count, 1)
        XCTAssertTrue(made.prompt.user.contains("is: \(made.references[0])."))
        XCTAssertTrue(made.prompt.user.contains("palliative care nurse"))  // the real essay, not generated prose
        XCTAssertEqual(task.maximumUnits, 1082)
        let uuids = try ruler.task("niah_multikey_3", length: 4096).make(units: 20, seed: 7)
        XCTAssertEqual(uuids.references[0].count, 36)  // needle haystack with UUID keys and values
    }

    func testRulerQAPromptHoldsTheGoldDocumentAndScoresAnyAnswer() throws {
        let ruler = try RulerData(directory: Self.data.appendingPathComponent("long_context_eval"))
        let task = try ruler.task("qa_1", length: 4096)
        XCTAssertEqual(task.maxNewTokens, 32)
        let made = task.make(units: 3, seed: 1)
        XCTAssertEqual(made.prompt.continuation, " Answer:")
        XCTAssertTrue(made.prompt.user.contains("Document 3:\n"))
        XCTAssertFalse(made.prompt.user.contains("Document 4:\n"))
        let question = ruler.squad.questions.first { made.prompt.user.hasSuffix("Question: \($0.query)") }!
        XCTAssertEqual(made.references, question.answers)
        XCTAssertTrue(made.prompt.user.contains(ruler.squad.documents[question.gold[0]]))
        // string_match_part: one of several gold answers is enough (string_match_all would give 1/2).
        XCTAssertEqual(RulerScore.score(task: "qa_1", prediction: " France.", references: ["France", "Paris"]), 1)
        XCTAssertEqual(
            RulerScore.score(task: "niah_single_1", prediction: " France.", references: ["France", "Paris"]), 0.5)
    }

    func testEssayNIAHPutsTheNeedleAtTheGridDepthAndDistractorsForMultikey() throws {
        let words = try EvalCorpus.needleHaystackWords(directory: Self.data.appendingPathComponent("PaulGrahamEssays"))
        let first = EssayNIAH(depth: 0, words: words).make(units: 300, seed: 3)
        let context = first.prompt.user.components(separatedBy: "\n")[1]
        XCTAssertTrue(context.hasPrefix("One of the special magic numbers for "), context)
        XCTAssertTrue(context.contains("is: \(first.references[0])."))
        let last = EssayNIAH(depth: 1, valueKind: .uuids, words: words).make(units: 300, seed: 3)
        XCTAssertTrue(last.prompt.user.components(separatedBy: "\n")[1].hasSuffix("is: \(last.references[0])."))
        XCTAssertEqual(last.references[0].count, 36)
        let multikey = EssayNIAH(depth: 0.5, keyCount: 4, words: words).make(units: 300, seed: 3)
        XCTAssertEqual(
            multikey.prompt.user.components(separatedBy: "One of the special magic numbers for ").count - 1, 4)
        XCTAssertEqual(multikey.references.count, 1)
    }
}
