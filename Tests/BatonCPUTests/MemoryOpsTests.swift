import BatonTensor
import XCTest
@testable import BatonCPU

final class MemoryOpsTests: XCTestCase {
    let backend = CPUBackend()

    func testZerosIsZeroFilledAndEmptyHasTheShape() throws {
        let zeros = try backend.zeros([3, 5], dtype: .bf16)
        XCTAssertEqual(zeros.floats(), [Float](repeating: 0, count: 15))
        let empty = try backend.empty([2, 0, 4], dtype: .i32)
        XCTAssertEqual(empty.shape, [2, 0, 4])
        XCTAssertEqual(empty.dtype, .i32)
        assertThrowsBatonError(["empty", "[-1, 2]"]) { _ = try backend.empty([-1, 2], dtype: .f32) }
    }

    func testImpossibleAllocationsThrowInsteadOfCrashing() {
        XCTAssertThrowsError(try backend.empty([1 << 40, 1 << 30], dtype: .f32)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .outOfMemory)
        }
        XCTAssertThrowsError(try backend.zeros([1 << 52], dtype: .f32)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .outOfMemory)
        }
    }

    func testUploadAndDownloadReturnTheSameHostTensor() throws {
        let host = Tensor([1, 2, 3], shape: [3])
        let uploaded = try backend.upload(host)
        XCTAssertTrue(uploaded.storage === host.storage)
        let downloaded = try backend.download(uploaded)
        XCTAssertTrue(downloaded.storage === host.storage)
        XCTAssertEqual(downloaded.floats(), [1, 2, 3])
    }

    func testCopyIntoRowViewWritesOnlyThoseRows() throws {
        let destination = try backend.zeros([4, 2], dtype: .f32)
        try backend.copy(Tensor([1, 2, 3, 4], shape: [2, 2]), into: destination.rows(1..<3))
        XCTAssertEqual(destination.floats(), [0, 0, 1, 2, 3, 4, 0, 0])
    }

    func testCopyBetweenOverlappingViewsBehavesLikeMemmove() throws {
        let buffer = Tensor((0..<8).map(Float.init), shape: [8])
        try backend.copy(buffer.rows(0..<6), into: buffer.rows(2..<8))
        XCTAssertEqual(buffer.floats(), [0, 1, 0, 1, 2, 3, 4, 5])
    }

    func testCopyOfLargeTensorIsExact() throws {
        var rng = SeededGenerator(seed: 11)
        let source = rng.tensor([300_001], dtype: .f32)
        let destination = try backend.empty([300_001], dtype: .f32)
        try backend.copy(source, into: destination)
        XCTAssertEqual(destination.floats(), source.floats())
    }

    func testCopyRejectsDtypeAndCountMismatch() {
        assertThrowsBatonError(["copy", "bf16"]) {
            try backend.copy(Tensor([1, 2], shape: [2]), into: Tensor.zeros([2], dtype: .bf16))
        }
        assertThrowsBatonError(["copy", "element count"]) {
            try backend.copy(Tensor([1, 2], shape: [2]), into: Tensor.zeros([3], dtype: .f32))
        }
    }

    func testCastRoundsToNearestEvenLikeFloatBits() throws {
        var rng = SeededGenerator(seed: 1)
        var values = rng.floats(5000, in: -70_000...70_000)
        values += [0, -0.0, .infinity, -.infinity, 1e-6, -3e-8, 65_519, 65_520, 1.00390625, 1.01171875]
        let x = Tensor(values, shape: [values.count])
        let bf16 = try backend.cast(x, to: .bf16)
        let f16 = try backend.cast(x, to: .f16)
        let bf16Bits = Array(
            UnsafeBufferPointer(start: bf16.hostPointer.assumingMemoryBound(to: UInt16.self), count: values.count))
        let f16Bits = Array(
            UnsafeBufferPointer(start: f16.hostPointer.assumingMemoryBound(to: UInt16.self), count: values.count))
        XCTAssertEqual(bf16Bits, values.map(FloatBits.bf16(fromFloat:)))
        XCTAssertEqual(f16Bits, values.map(FloatBits.f16(fromFloat:)))
        // Widening is exact; bf16 -> f16 rounds the exact bf16 value once.
        XCTAssertEqual(try backend.cast(bf16, to: .f32).floats(), bf16.floats())
        let viaHalf = try backend.cast(bf16, to: .f16)
        XCTAssertEqual(viaHalf.floats(), bf16.floats().map { FloatBits.float(fromF16: FloatBits.f16(fromFloat: $0)) })
        // Same dtype: a new tensor with the same contents.
        let same = try backend.cast(x, to: .f32)
        XCTAssertFalse(same.storage === x.storage)
        XCTAssertEqual(same.floats(), values)
    }

    func testCastBetweenIntegersAndFromIntegers() throws {
        let ids = Tensor(int32: [-3, 0, 16_777_217, 7])
        XCTAssertEqual(try backend.cast(ids, to: .f32).floats(), [-3, 0, 16_777_216, 7])
        let wide = try backend.cast(ids, to: .i64)
        XCTAssertEqual(try backend.cast(wide, to: .i32).int32s(), [-3, 0, 16_777_217, 7])
        let big = Tensor([0], shape: [1], dtype: .i64)
        big.hostPointer.assumingMemoryBound(to: Int64.self)[0] = Int64(Int32.max) + 1
        assertThrowsBatonError(["cast", "2147483648", "i32"]) { _ = try backend.cast(big, to: .i32) }
        XCTAssertThrowsError(try backend.cast(Tensor([1.5], shape: [1]), to: .i32))
    }
}
