import type { Metric, Registry } from 'prom-client'

/** What a prom-client metric's get() returns per line (prom-client does not export the type). */
interface ValuePair {
  value: number
  labels: Readonly<Record<string, string | number>>
  metricName?: string
  sharedLabels?: Readonly<Record<string, string>>
}

// Counters and histograms for the request path. prom-client hashes the label object on every
// inc() and observe() (its children too): about 2 µs per request for our four observations.
// Here a caller looks a series up once per label set, keeps it, and counts into plain numbers
// and a Float64Array; prom-client's registry still renders them, through a metric's get()
// (the interface its own metrics implement), so the text format is prom-client's (D24).

type Labels<L extends string> = Readonly<Record<L, string>>

abstract class LabeledMetric<L extends string, S> {
  readonly aggregator = 'sum' as const
  readonly #series = new Map<string, { labels: Labels<L>, series: S }>()
  readonly name: string
  readonly help: string
  readonly labelNames: readonly L[]

  constructor (name: string, help: string, labelNames: readonly L[], registry: Registry) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
    // prom-client types registerMetric for its own classes; the registry only calls name, get() and type.
    registry.registerMetric(this as unknown as Metric)
  }

  /** The series of these label values, created on first use; keep it and count into it. */
  series (labels: Labels<L>): S {
    let key = ''
    for (const name of this.labelNames) key += `${labels[name]}\u0000`
    let entry = this.#series.get(key)
    if (entry === undefined) {
      const copy = Object.fromEntries(this.labelNames.map((name) => [name, labels[name]])) as Labels<L>
      entry = { labels: copy, series: this.newSeries() }
      this.#series.set(key, entry)
    }
    return entry.series
  }

  protected abstract newSeries (): S
  protected abstract values (labels: Labels<L>, series: S): ValuePair[]

  async get (): Promise<{ name: string, help: string, type: string, values: ValuePair[], aggregator: 'sum' }> {
    const values: ValuePair[] = []
    for (const { labels, series } of this.#series.values()) values.push(...this.values(labels, series))
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  abstract readonly type: 'counter' | 'histogram'

  reset (): void {
    this.#series.clear()
  }
}

export class CounterSeries {
  value = 0
  inc (by = 1): void {
    this.value += by
  }
}

export class LabeledCounter<L extends string> extends LabeledMetric<L, CounterSeries> {
  readonly type = 'counter' as const

  protected newSeries (): CounterSeries {
    return new CounterSeries()
  }

  protected values (labels: Labels<L>, series: CounterSeries): ValuePair[] {
    return [{ labels, value: series.value }]
  }
}

export class HistogramSeries {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  readonly bounds: readonly number[]

  constructor (bounds: readonly number[]) {
    this.bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    let index = 0
    while (index < this.bounds.length && value > this.bounds[index]!) index++
    this.counts[index]!++
    this.sum += value
    this.count++
  }
}

export class LabeledHistogram<L extends string> extends LabeledMetric<L, HistogramSeries> {
  readonly type = 'histogram' as const

  readonly buckets: readonly number[]

  constructor (name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry)
    this.buckets = buckets
  }

  protected newSeries (): HistogramSeries {
    return new HistogramSeries(this.buckets)
  }

  // The same value pairs prom-client's Histogram produces: cumulative buckets with `le` first.
  protected values (labels: Labels<L>, series: HistogramSeries): ValuePair[] {
    const values: Array<ValuePair> = []
    let cumulative = 0
    this.buckets.forEach((bound, index) => {
      cumulative += series.counts[index]!
      values.push({ labels: { le: bound }, sharedLabels: labels, value: cumulative, metricName: `${this.name}_bucket` })
    })
    values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: series.count, metricName: `${this.name}_bucket` })
    values.push({ labels: {}, sharedLabels: labels, value: series.sum, metricName: `${this.name}_sum` })
    values.push({ labels: {}, sharedLabels: labels, value: series.count, metricName: `${this.name}_count` })
    return values
  }
}
