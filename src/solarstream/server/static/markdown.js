// Model output -> safe DOM: marked parses the markdown, highlight.js colours code, DOMPurify sanitises the
// HTML before it becomes nodes. Raw HTML in an answer is shown as text, links only go to http(s)/mailto,
// images become links (nothing is loaded), and every node passes DOMPurify (no scripts, no event
// handlers, no style attributes, no javascript: URLs).

const { marked, DOMPurify, hljs } = globalThis;

const SAFE_URL = /^(https?:|mailto:)/i;
const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "img", "form", "button", "textarea", "select", "video", "audio", "picture", "source"],
  FORBID_ATTR: ["style", "srcset", "action", "formaction"],
  RETURN_DOM_FRAGMENT: true,
};

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

hljs.configure({ ignoreUnescapedHTML: true });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    if (!SAFE_URL.test(node.getAttribute("href") || "")) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tagName === "INPUT") node.setAttribute("disabled", ""); // task-list boxes only show
});

const parser = new marked.Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // raw HTML written by the model is shown, not interpreted
    html({ text, block }) {
      const shown = escapeHtml(block ? text.replace(/\n+$/, "") : text);
      return block ? `<p class="raw-html">${shown}</p>\n` : shown;
    },
    link({ href, tokens }) {
      if (!SAFE_URL.test(href || "")) return this.parser.parseInline(tokens);
      return false; // marked's own <a>; DOMPurify adds rel and target
    },
    image({ href, text }) {
      const label = `image: ${text || href}`;
      if (!SAFE_URL.test(href || "")) return escapeHtml(label);
      return `<a class="image-link" href="${escapeHtml(href)}">${escapeHtml(label)}</a>`;
    },
    code({ text, lang }) {
      const language = ((lang || "").match(/^\S*/) || [""])[0].toLowerCase();
      const known = language && hljs.getLanguage(language) ? language : "";
      const body = known ? hljs.highlight(text, { language: known, ignoreIllegals: true }).value : escapeHtml(text);
      const label = known || language;
      return `<pre data-lang="${escapeHtml(label)}"><code class="hljs${known ? ` language-${known}` : ""}">`
        + `${body}</code></pre>\n`;
    },
  },
});

/** Copy text to the clipboard; falls back to a selection where the Clipboard API is missing (plain http). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

/** A small button that copies what `text()` gives and says so. */
export function copyButton(label, title, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = label;
  button.title = title;
  button.addEventListener("click", async () => {
    try {
      await copyText(text());
      button.textContent = "Copied";
    } catch (_) {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

/** Markdown -> a sanitised DocumentFragment with a copy button on each code block and tables that scroll. */
export function renderMarkdown(source) {
  const fragment = DOMPurify.sanitize(parser.parse(source), PURIFY);
  for (const table of fragment.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.appendChild(table);
  }
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const lang = document.createElement("span");
    lang.className = "code-lang";
    lang.textContent = pre.dataset.lang || "text";
    const button = copyButton("Copy code", "Copy this code block", () => (code || pre).textContent);
    button.classList.add("code-copy");
    bar.append(lang, button);
    const block = document.createElement("div");
    block.className = "code-block";
    pre.replaceWith(block);
    block.append(bar, pre);
  }
  return fragment;
}
