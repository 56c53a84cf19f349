@testable import BatonVision
import Foundation
import XCTest

/// The three resamplers against torch/torchvision 0.28 and Pillow on the fixture's formula image
/// (edges, ramps, saturated patches, so clamping and negative lobes are exercised), shrinking,
/// enlarging and both at once.
final class BicubicResamplerTests: XCTestCase {
    /// `pattern` in scripts/make_video_fixtures.py.
    static func pattern(height: Int, width: Int) -> RGBFrame {
        var pixels = [UInt8](repeating: 0, count: height * width * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var value = (x * 37 + y * 91 + c * 53 + (x * y * 7) % 29 + ((x ^ y) & 15) * 5) % 256
                    if (x / 5 + y / 4) % 3 == 0 { value = 255 }
                    if (x + 2 * y) % 11 == 0 { value = 0 }
                    pixels[(y * width + x) * 3 + c] = UInt8(value)
                }
            }
        }
        return RGBFrame(width: width, height: height, pixels: pixels)
    }

    private func check(_ precision: BicubicResampler.Precision, _ expected: (VideoFixture.ResamplerCase) -> String)
        throws
    {
        let fixture = try VideoFixture.load()
        XCTAssertEqual(fixture.resampler.count, 4)
        for entry in fixture.resampler {
            let input = Self.pattern(height: entry.input[0], width: entry.input[1])
            let output = BicubicResampler.resize(
                input, height: entry.output[0], width: entry.output[1], precision: precision)
            let reference = [UInt8](Data(base64Encoded: expected(entry))!)
            XCTAssertEqual(output.pixels.count, reference.count)
            let differing = zip(output.pixels, reference).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(precision) \(entry.input) -> \(entry.output): \(differing) values differ")
        }
    }

    func testUInt8PathEqualsTorchvisionV2ResizeBitForBit() throws { try check(.torchvision) { $0.torchvision } }

    func testFloatPathEqualsTorchvisionV1ResizeOfUInt8BitForBit() throws { try check(.float32) { $0.float32 } }

    /// Against Pillow's two passes run one at a time (its C resampler: horizontal, then vertical).
    /// Pillow 13's `Image.resize` sometimes runs the vertical pass first, which moves some values by a
    /// few levels (`pillow_one_call_values_differing` in the fixture); Baton keeps the C source's order.
    func testPillowPathEqualsPillowBicubicPassesBitForBit() throws { try check(.pillow) { $0.pillow } }

    func testSameSizeIsTheIdentity() {
        let frame = Self.pattern(height: 28, width: 56)
        XCTAssertEqual(BicubicResampler.resize(frame, height: 28, width: 56), frame)
    }
}
