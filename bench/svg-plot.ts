/**
 * A small SVG chart for the benchmark report, generated from measurements
 * (no dependency: a plotting library would be most of a browser for five
 * shapes). Lines and/or bars over a shared x axis, y from 0, ticks, axis
 * labels, a legend, and horizontal reference lines (a ceiling, a target).
 *
 *   svgPlot({ title, xLabel, yLabel, xScale: 'category',
 *     series: [{ name: 'fetch', kind: 'line', points: [{ x: 1, y: 20 }, …] }],
 *     references: [{ y: 120, label: 'one libp2p stream' }] })
 */

export interface PlotSeries {
  name: string
  points: Array<{ x: number, y: number }>
  /** Default 'line'. Bars of several series at one x stand side by side. */
  kind?: 'line' | 'bar'
  color?: string
  /** Print each y above its point (default true). */
  valueLabels?: boolean
  /** Decimals of those labels (default: as many as a tenth of the y step needs). */
  decimals?: number
  /** A dashed line: a bound drawn next to measurements (log2 N by N). Lines only. */
  dashed?: boolean
}

export interface PlotReference {
  y: number
  label: string
  color?: string
  /** Default true. */
  dashed?: boolean
}

export interface PlotInit {
  title: string
  xLabel: string
  yLabel: string
  series: PlotSeries[]
  references?: PlotReference[]
  /** 'linear' (default): x to scale; 'category': the distinct x values evenly spaced (1, 2, 4, 8 holders). */
  xScale?: 'linear' | 'category'
  width?: number
  height?: number
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']
const MARGIN = { left: 64, right: 24, top: 56, bottom: 52 }

export function svgPlot (init: PlotInit): string {
  const width = init.width ?? 640
  const height = init.height ?? 360
  const plotW = width - MARGIN.left - MARGIN.right
  const plotH = height - MARGIN.top - MARGIN.bottom
  const references = init.references ?? []
  const xs = [...new Set(init.series.flatMap(s => s.points.map(p => p.x)))].sort((a, b) => a - b)
  const ys = [...init.series.flatMap(s => s.points.map(p => p.y)), ...references.map(r => r.y)]

  // y from 0 to a round number above everything, with ~5 ticks
  const yStep = niceStep(Math.max(...ys, 1) * 1.08 / 5)
  const yMax = Math.ceil(Math.max(...ys, 1) * 1.08 / yStep) * yStep
  const yAt = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH

  // x: categories in equal slots, or to scale with half a slot of room at each end
  const category = init.xScale === 'category'
  const lo = xs[0] ?? 0
  const hi = xs.at(-1) ?? 1
  const minGap = xs.slice(1).reduce((g, x, i) => Math.min(g, x - xs[i]), Infinity)
  const slots = category ? xs.length : (hi - lo) / (Number.isFinite(minGap) ? minGap : 1) + 1
  const slotW = plotW / Math.max(1, slots)
  const xAt = (x: number): number => category
    ? MARGIN.left + (xs.indexOf(x) + 0.5) * slotW
    : MARGIN.left + slotW / 2 + (hi > lo ? (x - lo) / (hi - lo) * (plotW - slotW) : 0)
  const xTicks = category || xs.length <= 12 ? xs : niceTicks(lo, hi)

  const out: string[] = []
  const text = (x: number, y: number, s: string, attrs = ''): void => { out.push(`<text x="${r(x)}" y="${r(y)}" ${attrs}>${escape(s)}</text>`) }
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  text(width / 2, 22, init.title, 'text-anchor="middle" font-size="15" font-weight="bold"')

  // grid, ticks and axes
  for (let y = 0; y <= yMax + yStep / 1e6; y += yStep) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(yAt(y))}" y2="${r(yAt(y))}" stroke="#e5e5e5"/>`)
    text(MARGIN.left - 6, yAt(y) + 4, formatNumber(y, yStep), 'text-anchor="end"')
  }
  for (const x of xTicks) {
    out.push(`<line x1="${r(xAt(x))}" x2="${r(xAt(x))}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 5}" stroke="#333"/>`)
    text(xAt(x), MARGIN.top + plotH + 18, formatNumber(x, 1), 'text-anchor="middle"')
  }
  out.push(`<path d="M${MARGIN.left},${MARGIN.top} V${MARGIN.top + plotH} H${MARGIN.left + plotW}" fill="none" stroke="#333"/>`)
  text(MARGIN.left + plotW / 2, height - 12, init.xLabel, 'text-anchor="middle"')
  text(16, MARGIN.top + plotH / 2, init.yLabel, `text-anchor="middle" transform="rotate(-90 16 ${r(MARGIN.top + plotH / 2)})"`)

  // bars first, lines over them
  const bars = init.series.filter(s => s.kind === 'bar')
  const barW = slotW * 0.7 / Math.max(1, bars.length)
  const colorOf = (s: PlotSeries): string => s.color ?? PALETTE[init.series.indexOf(s) % PALETTE.length]
  const labelOf = (s: PlotSeries, y: number): string => s.decimals != null ? y.toFixed(s.decimals) : formatNumber(y, yStep / 10)
  bars.forEach((s, i) => {
    for (const p of s.points) {
      const x = xAt(p.x) - slotW * 0.35 + i * barW
      out.push(`<rect x="${r(x)}" y="${r(yAt(p.y))}" width="${r(barW * 0.92)}" height="${r(yAt(0) - yAt(p.y))}" fill="${colorOf(s)}"/>`)
      if (s.valueLabels !== false) text(x + barW * 0.46, yAt(p.y) - 4, labelOf(s, p.y), 'text-anchor="middle" font-size="11"')
    }
  })
  for (const s of init.series.filter(s => s.kind !== 'bar')) {
    const points = [...s.points].sort((a, b) => a.x - b.x)
    out.push(`<polyline points="${points.map(p => `${r(xAt(p.x))},${r(yAt(p.y))}`).join(' ')}" fill="none" stroke="${colorOf(s)}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`)
    for (const p of points) {
      out.push(`<circle cx="${r(xAt(p.x))}" cy="${r(yAt(p.y))}" r="3.5" fill="${colorOf(s)}"/>`)
      if (s.valueLabels !== false) text(xAt(p.x), yAt(p.y) - 8, labelOf(s, p.y), 'text-anchor="middle" font-size="11"')
    }
  }
  // labels just above their lines, top down; one that would touch the label before goes under its line
  let lastLabelY = -Infinity
  for (const ref of [...references].sort((a, b) => b.y - a.y)) {
    const color = ref.color ?? '#555'
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(yAt(ref.y))}" y2="${r(yAt(ref.y))}" stroke="${color}" stroke-width="1.5"${ref.dashed === false ? '' : ' stroke-dasharray="6 4"'}/>`)
    lastLabelY = yAt(ref.y) - 4 >= lastLabelY + 13 ? yAt(ref.y) - 4 : Math.max(yAt(ref.y) + 13, lastLabelY + 13)
    text(MARGIN.left + plotW - 4, lastLabelY, `${ref.label} (${formatNumber(ref.y, yStep / 10)})`, `text-anchor="end" font-size="11" fill="${color}"`)
  }

  // legend: one row under the title
  let lx = MARGIN.left
  for (const s of init.series) {
    out.push(s.kind === 'bar'
      ? `<rect x="${lx}" y="34" width="12" height="10" fill="${colorOf(s)}"/>`
      : `<line x1="${lx}" x2="${lx + 14}" y1="39" y2="39" stroke="${colorOf(s)}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="4 2"' : ''}/>`)
    text(lx + 18, 43, s.name)
    lx += 34 + s.name.length * 7
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep (raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw))
  const m = raw / power
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power
}

function niceTicks (lo: number, hi: number): number[] {
  const step = niceStep((hi - lo) / 6 || 1)
  const ticks: number[] = []
  for (let x = Math.ceil(lo / step) * step; x <= hi + step / 1e6; x += step) ticks.push(x)
  return ticks
}

/** As many decimals as the step needs. */
function formatNumber (n: number, step: number): string {
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)))
  return n.toFixed(decimals)
}

function r (n: number): string {
  return String(Math.round(n * 10) / 10)
}

function escape (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}
