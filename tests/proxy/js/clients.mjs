// Node clients against the proxy, as their users call them: `node clients.mjs CASE BASE_URL`
// prints one JSON object of what the client read (the answer, the steps, the order of parts).
// tests/proxy/test_js_clients.py runs each case and checks it.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";

const [which, baseURL] = process.argv.slice(2);
const MODEL = "demo-thinkchain";
const PROMPT = "How many r in strawberry?";

// The Vercel AI SDK's model for any OpenAI-compatible chat-completions server, or its OpenAI
// provider's Responses model.
function aiModel(kind) {
  if (kind === "compatible") {
    return createOpenAICompatible({ name: "thinkchain", baseURL, apiKey: "no-key" }).chatModel(MODEL);
  }
  return createOpenAI({ baseURL, apiKey: "no-key" }).responses(MODEL);
}

async function aiGenerate(kind) {
  const result = await generateText({ model: aiModel(kind), prompt: PROMPT, maxRetries: 0 });
  return { text: result.text, reasoning: result.reasoningText ?? null };
}

async function aiStream(kind) {
  const result = streamText({ model: aiModel(kind), prompt: PROMPT, maxRetries: 0 });
  let text = "";
  let reasoning = "";
  const order = [];
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "reasoning-delta") reasoning += part.text;
    if (part.type === "text-delta") text += part.text;
    if (["reasoning-start", "text-start"].includes(part.type)) order.push(part.type);
  }
  return { text, reasoning, order, reasoningText: (await result.reasoningText) ?? null };
}

const client = () => new OpenAI({ baseURL, apiKey: "no-key", maxRetries: 0 });

async function nodeChat() {
  const reply = await client().chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: PROMPT }],
  });
  const message = reply.choices[0].message;
  return { text: message.content, reasoning: message.reasoning_content ?? null };
}

async function nodeChatStream() {
  const stream = client().chat.completions.stream({
    model: MODEL,
    messages: [{ role: "user", content: PROMPT }],
  });
  let text = "";
  let reasoning = "";
  let lastPiece = null;
  stream.on("chunk", (chunk) => {
    const delta = chunk.choices[0]?.delta ?? {};
    if (delta.reasoning_content) lastPiece = delta.reasoning_content;
    reasoning += delta.reasoning_content ?? "";
    text += delta.content ?? "";
  });
  const final = await stream.finalChatCompletion();
  const message = final.choices[0].message;
  return {
    text,
    reasoning,
    lastPiece,
    finalText: message.content,
    finalReasoning: message.reasoning_content ?? null,
  };
}

async function nodeResponses() {
  const reply = await client().responses.create({ model: MODEL, input: PROMPT });
  const summary = reply.output
    .filter((item) => item.type === "reasoning")
    .flatMap((item) => item.summary.map((part) => part.text))
    .join("");
  return { text: reply.output_text, reasoning: summary, types: reply.output.map((item) => item.type) };
}

async function nodeResponsesStream() {
  const stream = client().responses.stream({ model: MODEL, input: PROMPT });
  let text = "";
  let reasoning = "";
  const order = [];
  for await (const event of stream) {
    if (event.type === "response.reasoning_summary_text.delta") reasoning += event.delta;
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.output_item.added") order.push(event.item.type);
  }
  const final = await stream.finalResponse();
  return { text, reasoning, order, finalText: final.output_text };
}

const cases = {
  "ai-compatible-generate": () => aiGenerate("compatible"),
  "ai-compatible-stream": () => aiStream("compatible"),
  "ai-openai-responses-generate": () => aiGenerate("responses"),
  "ai-openai-responses-stream": () => aiStream("responses"),
  "openai-chat": nodeChat,
  "openai-chat-stream": nodeChatStream,
  "openai-responses": nodeResponses,
  "openai-responses-stream": nodeResponsesStream,
};

if (!cases[which] || !baseURL) {
  console.error(`usage: node clients.mjs (${Object.keys(cases).join("|")}) BASE_URL`);
  process.exit(2);
}
console.log(JSON.stringify(await cases[which]()));
