/**
 * scripts/check-imports.ts, the layer check `npm test` runs: it passes on
 * this tree and fails on a copy of it with a back-edge put in on purpose
 * (the copy, never src/ itself).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkImports, checkLayers, LAYERS, relativeImports } from '../../scripts/check-imports.ts'

const PROJECT = fileURLToPath(new URL('../..', import.meta.url))
const SCRIPT = path.join(PROJECT, 'scripts', 'check-imports.ts')

async function run (dir: string): Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [SCRIPT, dir], (err, _stdout, stderr) => {
      const e = err as { code?: number, signal?: NodeJS.Signals } | null
      resolve({ code: e == null ? 0 : e.code ?? null, signal: e?.signal ?? null, stderr })
    })
  })
}

describe('the import checker', function () {
  let dir: string
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-layers-'))
    await fs.cp(path.join(PROJECT, 'src'), path.join(dir, 'src'), { recursive: true })
  })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('passes on this tree: every folder of src/ is in a layer and imports only from below', async () => {
    assert.deepEqual(checkImports(PROJECT), [])
    assert.deepEqual(checkLayers(path.join(dir, 'src')), [], 'and on its copy')
  })

  it('fails `npm test` on a back-edge: a lower folder importing a higher one', async () => {
    const bad = path.join(dir, 'src', 'routing', 'back-edge.ts')
    await fs.writeFile(bad, "import type { ShoalPeer } from '../peer/peer.ts'\nexport type P = ShoalPeer\n")
    try {
      const { code, signal, stderr } = await run(dir)
      assert.deepEqual({ code, signal }, { code: 1, signal: null }, stderr)
      assert.match(stderr, /src\/routing\/back-edge\.ts imports src\/peer\/peer\.ts: routing may not import peer \(a higher layer\)/)
      assert.match(stderr, /layers, lowest first: errors\.ts constants\.ts < utils < /)
      const real = await run(PROJECT)
      assert.deepEqual({ code: real.code, signal: real.signal }, { code: 0, signal: null }, `the real tree still passes: ${real.stderr}`)
    } finally {
      await fs.rm(bad)
    }
  })

  it('fails on an import between two folders of the same layer, and on a folder no layer lists', async () => {
    const sameLayer = LAYERS.find(units => units.length > 1 && !units[0].endsWith('.ts'))
    assert.ok(sameLayer != null, 'a layer of two folders')
    const [a, b] = sameLayer
    const bad = path.join(dir, 'src', a, 'sibling.ts')
    await fs.writeFile(bad, `export const x = await import('../${b}/nothing.ts')\n`)
    const stray = path.join(dir, 'src', 'stray')
    await fs.mkdir(stray)
    try {
      const problems = checkLayers(path.join(dir, 'src'))
      assert.ok(problems.includes(`src/${a}/sibling.ts imports src/${b}/nothing.ts: ${a} may not import ${b} (the same layer)`), problems.join('\n'))
      assert.ok(problems.some(p => p.startsWith('src/stray is in no layer')), problems.join('\n'))
    } finally {
      await fs.rm(bad)
      await fs.rm(stray, { recursive: true })
    }
  })

  it('reads static, multi-line, type-only, re-export, side-effect and dynamic imports, and not imports quoted in comments', () => {
    const source = [
      "import { a } from './a.ts'",
      'import type {',
      '  B,',
      '  C',
      "} from '../b/c.ts'",
      "export { d } from './d.ts'",
      "import './side-effect.ts'",
      "const e = await import('../e/e.ts')",
      "import fs from 'node:fs'",
      "// import { f } from '../f.ts'",
      "/** import { g } from '../g.ts' */"
    ].join('\n')
    assert.deepEqual(relativeImports(source).sort(), ['../b/c.ts', '../e/e.ts', './a.ts', './d.ts', './side-effect.ts'])
  })
})
