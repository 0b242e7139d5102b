import { describe, expect, it } from '@jest/globals';
import { lagCdf, lagChart, ratesChart, stageRates, type StageSample } from './e2e-charts.js';
import { escapeXml, lineChart, linearTicks, logTicks } from './svg.js';

/** A minimal XML well-formedness check (no parser among the dependencies): every tag closes in
 * order, attributes are quoted, text holds no bare `<` or `&`. Returns the elements met. */
function parseXml(xml: string): { name: string; attrs: Record<string, string>; text: string }[] {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: number[] = [];
  const elements: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const token = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = token.exec(body))) {
    at = token.lastIndex;
    const [, close, name, attrText, selfClose, text] = m;
    if (text !== undefined) {
      if (/&(?!(lt|gt|amp|quot|apos);)/.test(text)) throw new Error(`bare & in ${text}`);
      const open = elements[stack[stack.length - 1] ?? -1];
      if (open) open.text += text;
      continue;
    }
    if (close) {
      if (elements[stack.pop() ?? -1]?.name !== name)
        throw new Error(`</${name}> closes the wrong element`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (attrText ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] && a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1] ?? ''] = a[2] ?? '';
    }
    elements.push({ name: name ?? '', attrs, text: '' });
    if (!selfClose) stack.push(elements.length - 1);
  }
  if (at !== body.length) throw new Error(`not XML at ${at}: ${body.slice(at, at + 40)}`);
  if (stack.length) throw new Error(`${stack.length} elements not closed`);
  return elements;
}

const texts = (xml: string): string[] =>
  parseXml(xml)
    .filter((e) => e.name === 'text' || e.name === 'title')
    .map((e) => e.text);

describe('svg line chart', () => {
  it('is well-formed XML with a path per series, axes, labels, markers and caption', () => {
    const svg = lineChart({
      title: 'A & B <test>',
      xLabel: 'x "unit"',
      yLabel: 'y',
      series: [
        {
          name: 'one',
          points: [
            [0, 1],
            [1, 3],
            [2, 2],
          ],
        },
        {
          name: "two's",
          points: [
            [0, 0],
            [2, 5],
          ],
        },
      ],
      markers: [{ x: 1, label: 'p50 1 ms' }],
      caption: 'npm run bench; 2 cores',
    });
    const els = parseXml(svg);
    expect(els[0]?.name).toBe('svg');
    const paths = els.filter((e) => e.name === 'path' && e.attrs.class === 'series');
    expect(paths.map((p) => p.attrs['data-name'])).toEqual(['one', 'two&apos;s']);
    expect(paths[0]?.attrs.d).toMatch(/^M[\d.]+ [\d.]+ L/);
    expect(els.filter((e) => e.name === 'g').map((e) => e.attrs.class)).toEqual(
      expect.arrayContaining(['axis x', 'axis y', 'legend', 'marker']),
    );
    expect(texts(svg)).toEqual(
      expect.arrayContaining([
        'A &amp; B &lt;test&gt;',
        'x &quot;unit&quot;',
        'y',
        'p50 1 ms',
        'npm run bench; 2 cores',
        'one',
      ]),
    );
    // y ticks 0..5 (the largest y), x ticks 0..2.
    expect(texts(svg)).toEqual(expect.arrayContaining(['0', '5', '2']));
  });

  it('stays well-formed with no points, NaN and a log axis with x <= 0', () => {
    for (const svg of [
      lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [] }] }),
      lineChart({
        title: 't',
        xLabel: 'x',
        yLabel: 'y',
        xScale: 'log',
        series: [
          {
            name: 's',
            points: [
              [0, 1],
              [NaN, 2],
              [10, 3],
              [1000, 4],
            ],
          },
        ],
        markers: [{ x: 0, label: 'skipped' }],
      }),
    ]) {
      expect(() => parseXml(svg)).not.toThrow();
      expect(svg).not.toMatch(/NaN|Infinity/);
    }
  });

  it('picks round ticks', () => {
    expect(linearTicks(0, 950)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(logTicks(1, 1000)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
    expect(escapeXml(`<a b="c">&'`)).toBe('&lt;a b=&quot;c&quot;&gt;&amp;&apos;');
  });
});

describe('bench charts', () => {
  const samples: StageSample[] = [
    { t: 0, committed: 0, published: 0, applied: 0 },
    { t: 1, committed: 1000, published: 900, applied: 800 },
    { t: 2, committed: 2000, published: 1900, applied: 1900 },
    { t: 4, committed: 2000, published: 2000, applied: 2000 },
  ];

  it('turns cumulative samples into events/s per interval', () => {
    expect(stageRates(samples, 'committed')).toEqual([
      [1, 1000],
      [2, 1000],
      [4, 0],
    ]);
    expect(stageRates(samples, 'applied')).toEqual([
      [1, 800],
      [2, 1100],
      [4, 50],
    ]);
  });

  it('draws one line per stage with the phase markers', () => {
    const svg = ratesChart({ samples, phases: [{ x: 2, label: 'drain' }], caption: 'c' });
    const names = parseXml(svg)
      .filter((e) => e.name === 'path')
      .map((e) => e.attrs['data-name']);
    expect(names).toEqual([
      'write: commands committed',
      'relay: records published',
      'sink: events applied',
    ]);
    expect(texts(svg)).toEqual(expect.arrayContaining(['drain', 'seconds since start']));
  });

  it('draws the lag CDF with p50 and p99 marked', () => {
    const lags = Array.from({ length: 1000 }, (_, i) => i / 10);
    const cdf = lagCdf(lags, 100);
    expect(cdf[0]).toEqual([0, 0.001]);
    expect(cdf[cdf.length - 1]).toEqual([99.9, 1]);
    expect(cdf.length).toBeLessThanOrEqual(101);
    const svg = lagChart({ sortedLags: lags, p50: 50, p99: 99, caption: 'c' });
    expect(texts(svg)).toEqual(
      expect.arrayContaining(['p50 50 ms', 'p99 99 ms', 'lag (ms, log scale)']),
    );
    expect(parseXml(svg).filter((e) => e.name === 'path')).toHaveLength(1);
  });
});
