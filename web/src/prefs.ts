// The console's preferences (the guide's "Customizing" section): font
// size, theme and Safe Paste, saved on the server for the user; and
// whether programs in the shell may set the clipboard (OSC 52), off by
// default because anything the shell prints could then replace what the
// user copies next.

import { loadPreferences, savePreferences } from "./api";

export type FontSize = "smallest" | "small" | "medium" | "large" | "largest";
export type Theme = "light" | "dark";

export interface Preferences {
  fontSize: FontSize;
  theme: Theme;
  safePaste: boolean;
  clipboardWrites: boolean;
}

export const FONT_SIZES: Record<FontSize, { label: string; px: number }> = {
  smallest: { label: "Smallest", px: 10 },
  small: { label: "Small", px: 12 },
  medium: { label: "Medium", px: 14 },
  large: { label: "Large", px: 17 },
  largest: { label: "Largest", px: 20 },
};

export const DEFAULTS: Preferences = { fontSize: "medium", theme: "light", safePaste: true, clipboardWrites: false };

export function parse(raw: Record<string, unknown>): Preferences {
  const p = { ...DEFAULTS };
  if (typeof raw.fontSize === "string" && raw.fontSize in FONT_SIZES) p.fontSize = raw.fontSize as FontSize;
  if (raw.theme === "light" || raw.theme === "dark") p.theme = raw.theme;
  if (typeof raw.safePaste === "boolean") p.safePaste = raw.safePaste;
  if (typeof raw.clipboardWrites === "boolean") p.clipboardWrites = raw.clipboardWrites;
  return p;
}

export async function load(): Promise<Preferences> {
  try {
    return parse(await loadPreferences());
  } catch {
    return { ...DEFAULTS };
  }
}

export async function save(p: Preferences): Promise<void> {
  await savePreferences({ ...p });
}

export const TERMINAL_THEMES = {
  light: {
    background: "#ffffff",
    foreground: "#16191f",
    cursor: "#16191f",
    selectionBackground: "#b4d5fe",
    black: "#000000",
    red: "#c5221f",
    green: "#1e7d32",
    yellow: "#8a6d00",
    blue: "#0b57d0",
    magenta: "#a142f4",
    cyan: "#007b83",
    white: "#d0d0d0",
    brightBlack: "#5f6368",
    brightRed: "#d93025",
    brightGreen: "#188038",
    brightYellow: "#b06000",
    brightBlue: "#1a73e8",
    brightMagenta: "#9334e6",
    brightCyan: "#12a4af",
    brightWhite: "#ffffff",
  },
  dark: {
    background: "#0f1b2a",
    foreground: "#e9ebed",
    cursor: "#e9ebed",
    selectionBackground: "#3d5a80",
  },
};
