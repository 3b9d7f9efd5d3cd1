// openai_client.mjs — the official OpenAI Node SDK as a real client of switchyard,
// run by tests/integration/test_openai_sdk.py (which makes the assertions).
//
// It sends, with the SDK's baseURL pointing at switchyard (SY_BASE_URL, e.g.
// http://127.0.0.1:8080/v1):
//   1. one chat completion (not streamed);
//   2. one streamed chat completion (stream: true, stream_options.include_usage),
//      with mock-llm's x-mock-* headers asking for SY_STREAM_CHUNKS content chunks
//      and x-mock-echo, so that the final usage chunk also carries the request as
//      the backend received it.
// Both read the HTTP response through .withResponse(), for switchyard's headers.
// It prints one JSON object on stdout and exits 0; on any SDK error it prints
// {"error": ...} and exits 1. Retries are off, so each call is exactly one request.
import OpenAI from 'openai';

const baseURL = process.env.SY_BASE_URL;
if (!baseURL) {
  console.log(JSON.stringify({ error: 'SY_BASE_URL is not set' }));
  process.exit(2);
}
const user = process.env.SY_USER_ID || 'sdk-user-1';
const chunks = process.env.SY_STREAM_CHUNKS || '6';

const client = new OpenAI({ baseURL, apiKey: 'sk-switchyard-test', maxRetries: 0, timeout: 20000 });

function switchyardHeaders(response) {
  return {
    status: response.status,
    content_type: response.headers.get('content-type'),
    experiment: response.headers.get('x-switchyard-experiment'),
    variant: response.headers.get('x-switchyard-variant'),
    trace_id: response.headers.get('x-switchyard-trace-id'),
  };
}

async function plain() {
  const { data, response } = await client.chat.completions
    .create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from the SDK' }] },
      { headers: { 'x-user-id': user } },
    )
    .withResponse();
  return {
    headers: switchyardHeaders(response),
    id: data.id,
    object: data.object,
    model: data.model,
    content: data.choices?.[0]?.message?.content ?? null,
    finish_reason: data.choices?.[0]?.finish_reason ?? null,
    usage: data.usage ?? null,
  };
}

async function streamed() {
  const { data: stream, response } = await client.chat.completions
    .create(
      {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'stream to me' }],
        stream: true,
        stream_options: { include_usage: true },
      },
      {
        headers: {
          'x-user-id': user,
          'x-mock-chunks': chunks,
          'x-mock-interval-ms': '10',
          'x-mock-echo': '1',
        },
      },
    )
    .withResponse();
  const out = { headers: switchyardHeaders(response), chunks: [], text: '', usage: null, echo: null };
  for await (const chunk of stream) {
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content ?? null;
    out.chunks.push({
      id: chunk.id,
      object: chunk.object,
      model: chunk.model,
      role: choice?.delta?.role ?? null,
      content: delta,
      finish_reason: choice?.finish_reason ?? null,
      nchoices: chunk.choices?.length ?? 0,
      has_usage: chunk.usage != null,
    });
    if (delta !== null) out.text += delta;
    if (chunk.usage != null) out.usage = chunk.usage;
    if (chunk.mock_echo != null) out.echo = chunk.mock_echo;
  }
  return out;
}

try {
  const result = { completion: await plain(), stream: await streamed() };
  console.log(JSON.stringify(result));
} catch (err) {
  console.log(JSON.stringify({
    error: String(err && err.message ? err.message : err),
    status: err?.status ?? null,
    name: err?.constructor?.name ?? null,
  }));
  process.exit(1);
}
