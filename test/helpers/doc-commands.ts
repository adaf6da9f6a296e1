/**
 * The shell commands a Markdown file shows in its fenced code blocks, so a
 * test can run exactly what a reader would copy. A block is a command block
 * when its first line starts (unindented) with a command this project documents (`npx`,
 * `npm`, `curl`, `node`, `shoal`); other blocks (sample output, diagrams,
 * config) are left alone. Inside a command block every line must be a
 * command or an indented comment continuing the one above: anything else
 * throws, so a new kind of line is noticed rather than skipped.
 */
import { readFileSync } from 'node:fs'

export interface DocCommand {
  /** The file and 1-based line the command is on. */
  file: string
  line: number
  /** The command, comment removed. */
  command: string
  /** Its comment (and the indented comment lines below it), '' if none. */
  comment: string
  /** Commands offered in its comment as `(or: COMMAND)`. */
  alternatives: string[]
}

const COMMAND_WORDS = ['npx', 'npm', 'curl', 'node', 'shoal']

function isCommandLine (line: string): boolean {
  return COMMAND_WORDS.some(word => line === word || line.startsWith(`${word} `))
}

/** The fenced code blocks of a Markdown text: the 1-based line of their first content line, and their lines. */
export function fencedBlocks (text: string): Array<{ line: number, lines: string[] }> {
  const blocks: Array<{ line: number, lines: string[] }> = []
  let open: { line: number, lines: string[], fence: string } | undefined
  text.split('\n').forEach((line, i) => {
    const fence = /^\s*(```+|~~~+)/.exec(line)?.[1]
    if (open == null) {
      if (fence != null) open = { line: i + 2, lines: [], fence }
    } else if (fence != null && fence[0] === open.fence[0] && fence.length >= open.fence.length && line.trim() === fence) {
      blocks.push({ line: open.line, lines: open.lines })
      open = undefined
    } else {
      open.lines.push(line)
    }
  })
  if (open != null) throw new Error(`unclosed code block at line ${open.line - 1}`)
  return blocks
}

/** Splits `cmd  # comment` at the first `#` that starts a word outside quotes and `$(...)`. */
export function splitComment (line: string): { command: string, comment: string } {
  let quote: string | undefined
  let depth = 0
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote != null) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") {
      quote = c
    } else if (c === '$' && line[i + 1] === '(') {
      depth++
      i++
    } else if (c === ')' && depth > 0) {
      depth--
    } else if (c === '#' && depth === 0 && (i === 0 || /\s/.test(line[i - 1]))) {
      return { command: line.slice(0, i).trim(), comment: line.slice(i + 1).trim() }
    }
  }
  return { command: line.trim(), comment: '' }
}

/** Every command shown in `file`'s fenced command blocks, in order. */
export function docCommands (file: string): DocCommand[] {
  const commands: DocCommand[] = []
  for (const block of fencedBlocks(readFileSync(file, 'utf8'))) {
    const first = block.lines.find(l => l.trim() !== '')
    // a command starts the line: an indented "shoal ..." is a diagram or output
    if (first == null || !isCommandLine(first)) continue
    let last: DocCommand | undefined
    block.lines.forEach((raw, i) => {
      const line = block.line + i
      if (raw.trim() === '') return
      if (/^\s+#/.test(raw) && last != null) {
        last.comment = `${last.comment} ${raw.trim().slice(1).trim()}`.trim()
        return
      }
      if (/^\s/.test(raw) || !isCommandLine(raw)) {
        throw new Error(`${file}:${line}: a command block holds a line that is neither a command nor an indented comment: ${raw}`)
      }
      const { command, comment } = splitComment(raw)
      last = { file, line, command, comment, alternatives: [] }
      commands.push(last)
    })
  }
  for (const c of commands) {
    for (const m of c.comment.matchAll(/\bor:\s*([^)]*)\)/g)) c.alternatives.push(m[1].trim())
  }
  return commands
}
