// The sign-in page: account ID or alias, user name, password, and the MFA
// code or a new password when the server asks for them. Failures show the
// server's message, which never says which part was wrong.

import { ApiError, signin, type SigninFields } from "./api";
import { h } from "./dom";

export function renderSignin(root: HTMLElement, done: () => void): void {
  const message = h("p", { class: "signin-message", role: "alert", id: "signin-message" });
  const field = (label: string, name: string, type = "text", autocomplete = "") => {
    const input = h("input", { name, id: `f-${name}`, type, autocomplete, required: true });
    return { input, row: h("div", { class: "field" }, h("label", { for: input.id, text: label }), input) };
  };
  const account = field("Account ID or alias", "account", "text", "organization");
  const user = field("IAM user name", "username", "text", "username");
  const password = field("Password", "password", "password", "current-password");
  const mfa = field("MFA code", "mfa_code", "text", "one-time-code");
  mfa.input.required = false;
  mfa.input.inputMode = "numeric";
  mfa.row.hidden = true;
  const newPassword = field("New password", "new_password", "password", "new-password");
  const confirm = field("Confirm new password", "confirm_password", "password", "new-password");
  newPassword.row.hidden = true;
  confirm.row.hidden = true;
  newPassword.input.required = false;
  confirm.input.required = false;
  const submit = h("button", { type: "submit", class: "primary", text: "Sign in" });
  const heading = h("h1", { text: "Sign in to Seashell" });
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-heading", novalidate: false },
    account.row,
    user.row,
    password.row,
    mfa.row,
    newPassword.row,
    confirm.row,
    submit,
  );
  heading.id = "signin-heading";
  let changing = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message.textContent = "";
    message.className = "signin-message";
    if (changing && newPassword.input.value !== confirm.input.value) {
      message.textContent = "The new passwords do not match.";
      message.classList.add("error");
      return;
    }
    const fields: SigninFields = {
      account: account.input.value,
      username: user.input.value,
      password: password.input.value,
    };
    if (!mfa.row.hidden && mfa.input.value) fields.mfa_code = mfa.input.value;
    if (changing) fields.new_password = newPassword.input.value;
    submit.disabled = true;
    try {
      await signin(fields);
      done();
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, "Error", String(e));
      message.classList.add("error");
      message.textContent = err.message;
      if (err.code === "MfaRequired") {
        mfa.row.hidden = false;
        mfa.input.required = true;
        mfa.input.focus();
      } else if (err.code === "PasswordChangeRequired") {
        changing = true;
        heading.textContent = "Change your password";
        newPassword.row.hidden = false;
        confirm.row.hidden = false;
        newPassword.input.required = true;
        confirm.input.required = true;
        submit.textContent = "Change password and sign in";
        newPassword.input.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  root.replaceChildren(h("main", { class: "signin-page" }, h("div", { class: "signin-card" }, heading, message, form)));
  account.input.focus();
}
