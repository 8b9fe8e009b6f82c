/**
 * The chart `npm run bench` writes beside its table: for each case, one bar per server with the
 * table's ratio to its native baseline (paired by round; node:http for the limit row and the
 * node-based servers), baselines at 1.0, and a line at 1.0. Plain SVG, no dependency.
 */

export interface ChartRow {
  case: string;
  server: string;
  baseline: string;
  /** req/s over the baseline's, the median of the rounds' paired ratios. */
  ratio: number;
}

const BAR = 16;
const GAP = 4;
const CASE_GAP = 28;
const HEIGHT = 260;
const TOP = 40;
const LEFT = 48;
const LEGEND = 180;
const COLORS = [
  '#9aa5b1',
  '#1f6feb',
  '#0e8a16',
  '#b08800',
  '#8250df',
  '#cf222e',
  '#bc4c00',
  '#1b7c83',
  '#6e7781',
  '#d4a72c',
  '#57606a',
  '#e16f24',
];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** An SVG of each server's req/s over native node:http's, per case. */
export function ratioChart(rows: ChartRow[], subtitle: string): string {
  const cases = [...new Set(rows.map((r) => r.case))];
  const servers = [...new Set(rows.map((r) => r.server))];
  const ratio = (c: string, s: string): number | undefined => {
    const row = rows.find((r) => r.case === c && r.server === s);
    if (row === undefined) return undefined;
    return row.server === row.baseline ? 1 : row.ratio;
  };
  const max = Math.max(1.5, ...cases.flatMap((c) => servers.map((s) => ratio(c, s) ?? 0)));
  const scale = (HEIGHT - TOP - 30) / max;
  const groupWidth = servers.length * (BAR + GAP);
  const width = LEFT + cases.length * (groupWidth + CASE_GAP) + LEGEND;
  const y0 = HEIGHT - 30;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${LEFT}" y="16" font-size="13" font-weight="bold">req/s as a ratio to the native baseline, per case</text>`,
    `<text x="${LEFT}" y="30" fill="#57606a">${escape(subtitle)}</text>`,
  );
  for (let t = 0; t <= max; t += max > 6 ? 2 : max > 3 ? 1 : 0.5) {
    const y = y0 - t * scale;
    out.push(
      `<line x1="${LEFT}" x2="${width - LEGEND}" y1="${y}" y2="${y}" stroke="#eaeef2"/>`,
      `<text x="${LEFT - 6}" y="${y + 4}" text-anchor="end" fill="#57606a">${t.toFixed(1)}x</text>`,
    );
  }
  const one = y0 - scale;
  cases.forEach((c, ci) => {
    const x0 = LEFT + 10 + ci * (groupWidth + CASE_GAP);
    servers.forEach((s, si) => {
      const r = ratio(c, s);
      if (r === undefined) return;
      const h = r * scale;
      const x = x0 + si * (BAR + GAP);
      out.push(
        `<rect x="${x}" y="${y0 - h}" width="${BAR}" height="${h}" fill="${COLORS[si % COLORS.length]}"><title>${escape(`${c} ${s}: ${r.toFixed(2)}x`)}</title></rect>`,
      );
    });
    out.push(`<text x="${x0 + groupWidth / 2}" y="${y0 + 16}" text-anchor="middle">${escape(c)}</text>`);
  });
  out.push(
    `<line x1="${LEFT}" x2="${width - LEGEND}" y1="${one}" y2="${one}" stroke="#cf222e" stroke-dasharray="4 3"/>`,
  );
  servers.forEach((s, si) => {
    const y = TOP + si * 16;
    const x = width - LEGEND + 10;
    out.push(
      `<rect x="${x}" y="${y}" width="10" height="10" fill="${COLORS[si % COLORS.length]}"/>`,
      `<text x="${x + 16}" y="${y + 9}">${escape(s)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
