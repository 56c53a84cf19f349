import BatonTensor

/// Where every patch of a batch of images/videos goes inside the vision tower, computed on the
/// host from the grids alone (transformers' `rot_pos_emb`, `get_window_index` and `cu_seqlens`).
///
/// Rows arrive in processor order: per item, per temporal unit, merge units row-major, and inside
/// each merge unit its patches (dy, dx) row-major. The tower regroups merge units window by window
/// (windows row-major over a grid padded to whole windows, merge units row-major inside each), so
/// every window and every temporal unit is a contiguous run of rows; the merger's output is put
/// back in processor order at the end.
public struct VisionLayout: Sendable, Equatable {
    /// Patch rows in all (N).
    public let patchCount: Int
    /// Merge units in all (N / 4): the tower's output rows.
    public let mergedCount: Int
    /// For each row of the window order, the processor-order patch row it takes `[N]`.
    public let patchOrder: [Int32]
    /// For each processor-order merge unit, its row in the window order `[N / 4]` (argsort of
    /// transformers' `window_index`).
    public let mergedRestoreOrder: [Int32]
    /// Rotary positions of the window-ordered patches, `[2, N]` row-major: patch-grid rows (h), then columns (w).
    public let rotaryPositions: [Int32]
    /// Cumulative patch offsets of the windows (empty windows dropped): `cu_window_seqlens`.
    public let windowSegments: [Int32]
    /// Cumulative patch offsets of the temporal units: `cu_seqlens` of the full-attention blocks.
    public let frameSegments: [Int32]

    /// - Parameters:
    ///   - mergeSize: `spatial_merge_size` (2).
    ///   - windowUnits: window side in merge units (`window_size / merge / patch`, 4).
    public init(grids: [VisionGrid], mergeSize: Int, windowUnits: Int) {
        let unit = mergeSize * mergeSize
        var patchOrder: [Int32] = [], windowOrder: [Int] = []
        var hRow: [Int32] = [], wRow: [Int32] = []
        var windowSegments: [Int32] = [0], frameSegments: [Int32] = [0]
        var firstUnit = 0  // merge units of earlier items
        for grid in grids {
            let (mergedH, mergedW) = (grid.h / mergeSize, grid.w / mergeSize)
            // transformers pads by a whole window when the grid divides evenly; padded cells are empty.
            let windowsH = (mergedH + windowUnits - (mergedH % windowUnits)) / windowUnits
            let windowsW = (mergedW + windowUnits - (mergedW % windowUnits)) / windowUnits
            for t in 0..<grid.t {
                for wy in 0..<windowsH {
                    for wx in 0..<windowsW {
                        var size = 0
                        for r in wy * windowUnits..<min((wy + 1) * windowUnits, mergedH) {
                            for c in wx * windowUnits..<min((wx + 1) * windowUnits, mergedW) {
                                let mergedIndex = firstUnit + (t * mergedH + r) * mergedW + c
                                windowOrder.append(mergedIndex)
                                for dy in 0..<mergeSize {
                                    for dx in 0..<mergeSize {
                                        patchOrder.append(Int32(mergedIndex * unit + dy * mergeSize + dx))
                                        hRow.append(Int32(r * mergeSize + dy))
                                        wRow.append(Int32(c * mergeSize + dx))
                                    }
                                }
                                size += 1
                            }
                        }
                        // unique_consecutive: an empty window adds no offset.
                        if size > 0 { windowSegments.append(windowSegments.last! + Int32(size * unit)) }
                    }
                }
                frameSegments.append(frameSegments.last! + Int32(grid.h * grid.w))
            }
            firstUnit += grid.t * mergedH * mergedW
        }
        var restore = [Int32](repeating: 0, count: windowOrder.count)
        for (row, mergedIndex) in windowOrder.enumerated() { restore[mergedIndex] = Int32(row) }
        self.patchCount = patchOrder.count
        self.mergedCount = windowOrder.count
        self.patchOrder = patchOrder
        self.mergedRestoreOrder = restore
        self.rotaryPositions = hRow + wRow
        self.windowSegments = windowSegments
        self.frameSegments = frameSegments
    }
}
