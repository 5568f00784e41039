import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { LabeledCounter, LabeledHistogram } from '../../src/metric-series.ts'

const BUCKETS = [0.001, 0.01, 0.1, 1]
const OBSERVATIONS: Array<[string, string, number]> = [
  ['get', '200', 0.0004], ['get', '200', 0.001], ['get', '200', 0.05], ['get', '404', 3],
  ['set', '200', 0.0101], ['set', '200', 0.2], ['get', '200', 0.7]
]

describe('labeled metric series', () => {
  test('a histogram renders exactly as prom-client\'s own Histogram fed the same observations', async () => {
    const ours = new Registry()
    const theirs = new Registry()
    const histogram = new LabeledHistogram('req_seconds', 'Request time.', ['operation', 'status'] as const, BUCKETS, ours)
    const reference = new Histogram({ name: 'req_seconds', help: 'Request time.', labelNames: ['operation', 'status'], buckets: BUCKETS, registers: [theirs] })
    for (const [operation, status, seconds] of OBSERVATIONS) {
      histogram.series({ operation, status }).observe(seconds)
      reference.observe({ operation, status }, seconds)
    }
    const text = await ours.metrics()
    assert.equal(text, await theirs.metrics())
    assert.match(text, /req_seconds_bucket\{le="0.01",operation="get",status="200"\} 2\n/)
    assert.match(text, /req_seconds_count\{operation="get",status="404"\} 1\n/)
  })

  test('a counter renders as prom-client\'s Counter, and one series is one line whatever the order of the labels given', async () => {
    const ours = new Registry()
    const theirs = new Registry()
    const counter = new LabeledCounter('hits_total', 'Hits.', ['result', 'app'] as const, ours)
    const reference = new Counter({ name: 'hits_total', help: 'Hits.', labelNames: ['result', 'app'], registers: [theirs] })
    counter.series({ result: 'hit', app: 'CRM' }).inc()
    counter.series({ app: 'CRM', result: 'hit' }).inc(2)
    counter.series({ result: 'miss', app: 'CRM' }).inc()
    reference.inc({ result: 'hit', app: 'CRM' }, 3)
    reference.inc({ result: 'miss', app: 'CRM' })
    assert.equal(await ours.metrics(), await theirs.metrics())
    assert.match(await ours.metrics(), /hits_total\{result="hit",app="CRM"\} 3\n/)
  })

  test('a series is the same object for the same labels, so a caller may keep it', () => {
    const counter = new LabeledCounter('x_total', 'X.', ['a'] as const, new Registry())
    assert.equal(counter.series({ a: '1' }), counter.series({ a: '1' }))
    assert.notEqual(counter.series({ a: '1' }), counter.series({ a: '2' }))
  })
})
