/**
 * Two checks on every relative import, run by `npm test`
 * (`node scripts/check-imports.ts [PROJECT_DIR]`, exit 1 on any problem):
 *
 * 1. It names the `.ts` file: tsc does not catch a relative `.js` import of
 *    a `.ts` file, and Node's type stripping needs the real name.
 * 2. The folders of src/ form layers (LAYERS, lowest first; the same order
 *    as the diagram in docs/architecture.md): a module imports only from its
 *    own folder and from folders in lower layers. Folders in one layer do
 *    not import each other. A back-edge, and with it any cycle between
 *    folders, fails the test run; so does a folder no layer lists.
 *
 * Type-only imports count: a type names the folder it depends on.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

/** Top-level entries of src/ (folders, and the .ts files at its root), lowest layer first. */
export const LAYERS: ReadonlyArray<readonly string[]> = [
  ['errors.ts', 'constants.ts'],
  ['utils'],
  ['wire', 'content', 'transport'],
  ['store'],
  ['routing'],
  ['placement', 'exchange'],
  ['peer', 'ui'],
  ['api'],
  ['swarm'],
  ['cli'],
  ['index.ts']
]

const ROOTS = ['src', 'test', 'bin', 'bench', 'scripts']

/** Every problem found under `projectDir`, one line each (empty: all good). */
export function checkImports (projectDir: string): string[] {
  const problems: string[] = []
  for (const root of ROOTS) {
    for (const file of tsFiles(path.join(projectDir, root))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/from '\.{1,2}\/[^']*\.js'/.test(line) || /import\('\.{1,2}\/[^']*\.js'\)/.test(line)) {
          problems.push(`${path.relative(projectDir, file)}:${i + 1}: relative .js import (use the .ts name): ${line.trim()}`)
        }
      })
    }
  }
  problems.push(...checkLayers(path.join(projectDir, 'src')))
  return problems
}

/** Imports in `srcDir` that go against LAYERS, and entries no layer lists. */
export function checkLayers (srcDir: string): string[] {
  const problems: string[] = []
  const layerOf = new Map<string, number>()
  LAYERS.forEach((units, level) => { for (const unit of units) layerOf.set(unit, level) })
  for (const entry of readdirSync(srcDir)) {
    const isFolder = statSync(path.join(srcDir, entry)).isDirectory()
    if ((isFolder || entry.endsWith('.ts')) && !layerOf.has(entry)) {
      problems.push(`src/${entry} is in no layer: add it to LAYERS in scripts/check-imports.ts and to the layer diagram in docs/architecture.md`)
    }
  }
  const unitOf = (file: string): string => path.relative(srcDir, file).split(path.sep)[0]
  for (const file of tsFiles(srcDir)) {
    const from = unitOf(file)
    for (const specifier of relativeImports(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), specifier)
      const relative = path.relative(srcDir, target)
      if (relative.startsWith('..') || path.isAbsolute(relative)) continue
      const to = unitOf(target)
      if (to === from || !layerOf.has(from) || !layerOf.has(to)) continue
      if (layerOf.get(to)! >= layerOf.get(from)!) {
        const where = layerOf.get(to) === layerOf.get(from) ? 'the same layer' : 'a higher layer'
        problems.push(`src/${path.relative(srcDir, file)} imports src/${relative}: ${from} may not import ${to} (${where})`)
      }
    }
  }
  return problems
}

/** The relative specifiers of a module's static, re-export, side-effect and dynamic imports. */
export function relativeImports (source: string): string[] {
  // comments may quote code; strings never hold `/*` in this project
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const found: string[] = []
  const patterns = [
    /\b(?:import|export)\b[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g
  ]
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) if (match[1].startsWith('.')) found.push(match[1])
  }
  return found
}

function tsFiles (dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    // a project without bench/ or bin/ has nothing there to check
    if ((err as { code?: string }).code === 'ENOENT') return []
    throw err
  }
  return names.flatMap(name => {
    const file = path.join(dir, name)
    if (statSync(file).isDirectory()) return tsFiles(file)
    return file.endsWith('.ts') ? [file] : []
  })
}

if (import.meta.main) {
  const problems = checkImports(path.resolve(process.argv[2] ?? '.'))
  if (problems.length > 0) {
    const order = LAYERS.map(units => units.join(' ')).join(' < ')
    process.stderr.write(`import check failed:\n${problems.join('\n')}\nsrc/ layers, lowest first: ${order}\n`)
    process.exit(1)
  }
}
