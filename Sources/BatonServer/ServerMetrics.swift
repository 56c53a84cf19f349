import Prometheus

/// What GET /metrics reports, in Prometheus text format (swift-prometheus).
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Requests waiting for the engine (the one running is not counted).
    let queueLength: Gauge
    /// Seconds from a request's arrival (its queueing included) to its first new token.
    let timeToFirstToken: ValueHistogram
    /// Seconds between consecutive new tokens of one request.
    let timePerOutputToken: ValueHistogram
    let promptTokens: Counter
    let generatedTokens: Counter
    /// Streams whose client left before the end (their generation was stopped).
    let streamsAbandoned: Counter
    /// Images and videos of chat requests found in the encoder cache, and those decoded and encoded.
    let visualCacheHits: Counter
    let visualCacheMisses: Counter
    /// Bytes of vision-tower output the encoder cache holds.
    let visualCacheBytes: Gauge

    public init() {
        queueLength = registry.makeGauge(name: "baton_queue_length", help: "Requests waiting for the engine")
        timeToFirstToken = registry.makeValueHistogram(
            name: "baton_time_to_first_token_seconds",
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
            help: "Seconds from a request's arrival, queueing included, to its first new token")
        timePerOutputToken = registry.makeValueHistogram(
            name: "baton_time_per_output_token_seconds",
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
            help: "Seconds between consecutive new tokens of one request")
        promptTokens = registry.makeCounter(
            name: "baton_prompt_tokens_total", help: "Prompt tokens of finished requests")
        generatedTokens = registry.makeCounter(name: "baton_generation_tokens_total", help: "New tokens generated")
        streamsAbandoned = registry.makeCounter(
            name: "baton_streams_abandoned_total",
            help: "Streams whose client left before the end; their generation was stopped")
        visualCacheHits = registry.makeCounter(
            name: "baton_visual_cache_hits_total",
            help: "Images and videos whose vision-tower output came from the encoder cache")
        visualCacheMisses = registry.makeCounter(
            name: "baton_visual_cache_misses_total",
            help: "Images and videos decoded and run through the vision tower")
        visualCacheBytes = registry.makeGauge(
            name: "baton_visual_cache_bytes", help: "Bytes of vision-tower output held by the encoder cache")
    }

    /// Counts one answered request by endpoint and HTTP status .
    func countRequest(endpoint: String, status: Int) {
        registry.makeCounter(
            name: "baton_requests_total", labels: [("endpoint", endpoint), ("status", String(status))],
            help: "Requests answered, by endpoint and HTTP status"
        ).increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
