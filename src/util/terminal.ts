/**
 * Text for an operator's terminal: control characters (C0 but tab, DEL, C1) shown as \xNN. status and doctor print
 * what DPUs answered (error text from the DPU's stderr) and what records hold: a DPU that answers escape sequences
 * must not rewrite the operator's screen or title.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
