// tsc does not catch a relative `.js` import of a `.ts` file, and Node's type
// stripping needs the real `.ts` name: fail the test run on any.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

const roots = ['src', 'test', 'bin', 'bench', 'scripts']
const bad: string[] = []
const walk = (dir: string): void => {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name)
    if (statSync(file).isDirectory()) walk(file)
    else if (file.endsWith('.ts')) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/from '\.{1,2}\/[^']*\.js'/.test(line) || /import\('\.{1,2}\/[^']*\.js'\)/.test(line)) bad.push(`${file}:${i + 1}: ${line.trim()}`)
      })
    }
  }
}
for (const root of roots) {
  try { walk(root) } catch (err) { if ((err as { code?: string }).code !== 'ENOENT') throw err }
}
if (bad.length > 0) {
  process.stderr.write(`relative .js imports (use the .ts name):\n${bad.join('\n')}\n`)
  process.exit(1)
}
