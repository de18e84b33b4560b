// The console's entry point: the sign-in page, or the CloudShell page for
// a signed-in user.

import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { whoami } from "./api";
import { CloudShellPage } from "./cloudshell";
import { renderSignin } from "./signin";

async function boot(): Promise<void> {
  const root = document.getElementById("app");
  if (!root) return;
  const identity = await whoami().catch(() => null);
  if (!identity) {
    document.title = "Sign in · Seashell";
    renderSignin(root, () => void boot());
    return;
  }
  const page = new CloudShellPage(root, identity);
  await page.start();
}

void boot();
