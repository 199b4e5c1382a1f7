// Building the DOM of one message and of the conversation list. Model text only reaches the page
// through renderMarkdown (sanitised) or textContent.

import { copyButton, renderMarkdown } from "./markdown.js";

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function button(className, label, title, onClick) {
  const b = node("button", className, label);
  b.type = "button";
  if (title) b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

/** "12 prompt + 34 completion = 46 tokens", and how many of them were reasoning. */
export function usageText(usage) {
  let text = `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens} tokens`;
  const reasoning = usage.completion_tokens_details && usage.completion_tokens_details.reasoning_tokens;
  if (reasoning) text += ` (${reasoning} reasoning)`;
  return text;
}

function errorBlock(error) {
  const block = node("div", "turn-error");
  block.setAttribute("role", "alert");
  block.append(node("strong", "", error.status ? `Error ${error.status}: ` : "Error: "),
    node("span", "error-message", error.message), node("p", "error-advice", error.advice));
  return block;
}

/** Fill an assistant message's answer and reasoning (called again for every frame while streaming). */
export function paintAnswer(article, message) {
  article.querySelector(".content").replaceChildren(renderMarkdown(message.content));
  if (message.reasoning) {
    const details = article.querySelector(".reasoning");
    details.hidden = false;
    details.querySelector(".reasoning-text").textContent = message.reasoning;
  }
}

function userActions(article, message, act) {
  const edit = button("edit", "Edit", "Edit this message and continue the conversation from it", () => {
    const box = node("textarea", "edit-box");
    box.value = message.content;
    box.setAttribute("aria-label", "Edit the message");
    box.rows = Math.min(12, message.content.split("\n").length + 1);
    const submit = () => { if (box.value.trim()) act.resend(box.value.trim()); };
    const cancel = () => act.rerender();
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
      if (event.key === "Escape") cancel();
    });
    const bar = node("div", "actions");
    bar.append(button("edit-send primary", "Send", "Send the edited message (later messages are dropped)", submit),
      button("edit-cancel", "Cancel", "", cancel));
    article.querySelector(".content").replaceWith(box);
    article.querySelector(".actions").replaceWith(bar);
    box.focus();
  });
  return [edit];
}

/**
 * One message as an <article>. `state`: {last, running, unanswered}; `act`: {copy, regenerate, resend, rerender}
 * callbacks for this message.
 */
export function messageView(message, state, act) {
  const article = node("article", `msg ${message.role}`);
  const who = message.role === "user" ? "You" : message.model || "assistant";
  article.appendChild(node("div", "who", who));
  const actions = node("div", "actions");
  if (message.role === "user") {
    article.appendChild(node("div", "content", message.content));
    if (!state.running) actions.append(...userActions(article, message, act));
    if (state.unanswered && !state.running) {
      actions.append(button("retry", "Send again", "This message has no answer: send it again", act.regenerate));
    }
    article.appendChild(actions);
    return article;
  }
  article.classList.add(message.status || "done");
  const details = node("details", "reasoning");
  details.hidden = true;
  details.append(node("summary", "", "Reasoning"), node("div", "reasoning-text"));
  article.append(details, node("div", "content"));
  paintAnswer(article, message);
  if (!message.content) article.querySelector(".content").hidden = message.status !== "streaming";
  if (message.status === "stopped") article.appendChild(node("p", "note", "Stopped."));
  if (message.status === "failed" && message.error) {
    const block = errorBlock(message.error);
    if (state.last && !state.running) {
      block.appendChild(button("retry", "Retry", "Ask the same question again", act.regenerate));
    } else {
      block.appendChild(node("p", "note", "Not sent with later messages."));
    }
    article.appendChild(block);
  }
  if (message.status !== "streaming") {
    if (message.usage) actions.appendChild(node("span", "usage", usageText(message.usage)));
    if (message.content) {
      const copy = copyButton("Copy", "Copy this answer (markdown)", () => message.content);
      copy.classList.add("copy-answer");
      actions.appendChild(copy);
    }
    if (state.last && !state.running && message.status !== "failed") {
      actions.appendChild(button("regenerate", "Regenerate", "Ask the last question again", act.regenerate));
    }
  }
  article.appendChild(actions);
  return article;
}

/** The list of saved conversations: open one, delete one. */
export function conversationList(entries, currentId, act) {
  return entries.map((entry) => {
    const item = node("li", "conversation");
    const open = button("conversation-open", entry.title, new Date(entry.updated).toLocaleString(),
      () => act.open(entry.id));
    if (entry.id === currentId) open.setAttribute("aria-current", "true");
    const remove = button("conversation-delete", "×", "Delete this conversation", () => act.remove(entry.id));
    remove.setAttribute("aria-label", `Delete “${entry.title}”`);
    item.append(open, remove);
    return item;
  });
}
