// Type declarations of the `blockdiff` package: block diffusion language models (BD3-LM, SDAR)
// on WebGPU in the browser.

/** Every error of this package is an `Error` with the Rust message and one of these codes. */
export type ErrorCode =
  | 'no-webgpu' | 'no-adapter' | 'limit' | 'device' | 'device-lost' | 'gpu'
  | 'fetch' | 'file' | 'config' | 'checkpoint' | 'tokenizer'
  | 'input' | 'options' | 'busy' | 'disposed' | 'cancelled' | 'wasm' | 'error';

export interface BlockDiffError extends Error {
  code: ErrorCode;
}

/** A file: a URL (resolved against the page) or its bytes. */
export type FileSource = string | URL | ArrayBuffer | ArrayBufferView | Blob;

/** A model's files. The chat files are optional: without a chat template `chat` uses ChatML;
 * `generation_config.json` gives chat's sampling defaults and end-of-turn tokens. */
export interface ModelFiles {
  config: FileSource;
  weights: FileSource;
  tokenizer: FileSource;
  /** `chat_template.jinja` (Jinja, as Hugging Face ships it). */
  chatTemplate?: FileSource;
  /** `tokenizer_config.json` (its `chat_template` is used when there is no `chat_template.jinja`). */
  tokenizerConfig?: FileSource;
  /** `generation_config.json` (`temperature`, `top_p`, `top_k`, `eos_token_id`). */
  generationConfig?: FileSource;
}

export type ModelSource =
  /** A directory URL holding `config.json`, `model.safetensors` and `tokenizer.json`, and
   * optionally `chat_template.jinja`, `tokenizer_config.json`, `generation_config.json` (an HTTP
   * 404 for those means "absent"). */
  | string
  | URL
  | { baseUrl: string | URL }
  /** Explicit files (URLs or bytes); a chat file given here must exist. */
  | { files: ModelFiles };

/** Download progress. `loaded`/`total` are summed over the files (`total` is null until every
 * file's size is known). */
export interface ProgressEvent {
  /** `fetch` while bytes arrive, `gpu` while the weights go to the GPU, `ready` at the end. */
  phase: 'fetch' | 'gpu' | 'ready';
  file: string | null;
  url: string | null;
  loaded: number;
  total: number | null;
  fileLoaded?: number;
  fileTotal?: number | null;
  /** Whether this file came from the Cache API instead of the network. */
  fromCache: boolean;
}

export interface LoadOptions {
  onProgress?: (event: ProgressEvent) => void;
  /** Cache API cache name; `false` disables caching. Default `'blockdiff-v1'`. */
  cache?: string | boolean;
  /**
   * Weight type on the GPU. Default: the stored type of a model converted with
   * `blockdiff convert --to q8|q4` (no option needed), else f16 when the adapter has
   * `shader-f16`, else f32. `q8`/`q4` on an unconverted model quantize while loading (the full
   * file is still downloaded: convert instead to download less). Pick `q4` for the smallest
   * download and GPU footprint (0.625 bytes/weight, some quality loss), `q8` for near-f32 quality
   * at 1.06 bytes/weight, `f16` where the adapter has `shader-f16` and memory allows.
   */
  dtype?: 'f32' | 'f16' | 'q8' | 'q4';
  /** Aborts the downloads. */
  signal?: AbortSignal;
  /** Where the `.wasm` is (default: next to this module). */
  wasm?: string | URL | Response | BufferSource | WebAssembly.Module;
}

export type Strategy = 'first-hitting' | 'ddpm' | 'confidence' | 'entropy-bounded';

export interface GenerateOptions {
  /** How masked positions are unmasked inside a block. Default `'first-hitting'`. */
  strategy?: Strategy;
  /** Denoising steps per block (ddpm, confidence). Default: the block length. */
  steps?: number;
  /** Confidence: commit every position whose probability is at least this. */
  threshold?: number;
  /** Confidence: commit exactly this many positions per step. */
  perStep?: number;
  /** Entropy-bounded: summed entropy (nats) allowed per step. Default 1. */
  entropyBound?: number;
  /** 0 is greedy. Default 1. */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]. Default 1. */
  topP?: number;
  /** 0 disables top-k. Default 0. */
  topK?: number;
  /** Default 200. */
  maxTokens?: number;
  /** Sampling seed (an integer up to 2^53). Default 0. */
  seed?: number;
  /** Stop strings (the text is cut before the first one). */
  stop?: string[];
  /** Stop at `<|endoftext|>`. Default true. */
  stopAtEos?: boolean;
  /** Stop when the last 256 tokens' unigram entropy falls below 4 nats. Default true. */
  entropyGuard?: boolean;
  /** Emit a `step` event after every denoising step (costs a read-back per step). */
  streamSteps?: boolean;
  /** Use the KV cache (default true); false recomputes the prefix every step. */
  kvCache?: boolean;
  /** Called with every `block` event. */
  onBlock?: (event: BlockEvent) => void;
  /** Called with every `step` event (turns `streamSteps` on unless it is set). */
  onStep?: (event: StepEvent) => void;
  /** Cancels the generation (it then ends with `stop: 'cancelled'`). */
  signal?: AbortSignal;
}

/** A denoising step finished. */
export interface StepEvent {
  type: 'step';
  block: number;
  step: number;
  /** The current block's token ids (masked positions hold `maskId`). */
  tokens: number[];
  /** Each position's token text, `null` where still masked. */
  texts: (string | null)[];
  /** Positions still masked. */
  masked: number;
  maskId: number;
  /** Leading positions of this block that belong to the prompt (block 0 only). */
  promptTokens: number;
}

/** A block was committed. */
export interface BlockEvent {
  type: 'block';
  block: number;
  /** The text this block added. */
  text: string;
  tokens: number[];
}

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens whose keys/values were already in the KV cache (earlier turns of a chat). */
  reusedTokens: number;
  /** Prompt tokens run through the model (`promptTokens - reusedTokens`). */
  prefillTokens: number;
  generatedTokens: number;
  blocks: number;
  /** Denoising forward passes (the diffusion NFE). */
  nfe: number;
  commitForwards: number;
  elapsedMs: number;
  tokensPerSecond: number;
  /** Generated tokens per denoising forward. */
  tokensPerForward: number;
}

export type StopReason = 'eos' | 'max-tokens' | 'stop-string' | 'low-entropy' | 'cancelled';

/** The last event of a generation. */
export interface DoneEvent {
  type: 'done';
  text: string;
  tokens: number[];
  stop: StopReason;
  /** The end-of-sequence token that stopped the generation (not in `tokens`), or null. */
  eosToken: number | null;
  stats: GenerationStats;
}

export type GenerateEvent = StepEvent | BlockEvent | DoneEvent;

/** An async iterator of events. `break` in `for await` (or `return()`) cancels the generation
 * and waits until the session is free. */
export interface GenerationStream extends AsyncIterableIterator<GenerateEvent> {
  /** Stops at the next event; the stream then ends with `stop: 'cancelled'`. */
  cancel(): void;
  /** Resolves to the `done` event (or rejects with the generation's error). */
  readonly result: Promise<DoneEvent>;
  return(value?: unknown): Promise<IteratorReturnResult<unknown>>;
}

export interface Score {
  /** Nats per token (an upper bound on the NLL). */
  nll: number;
  stdErr: number;
  perplexity: number;
  tokens: number;
  samples: number;
}

/** One probed masked position. */
export interface ProbeRow {
  /** Distance from the end of the prompt (1 = first masked position). */
  distance: number;
  tokens: number[];
  texts: string[];
  probs: number[];
  /** Entropy (nats) of the position's distribution. */
  entropy: number;
}

/** One message of a conversation. Which roles exist is the chat template's business (usually
 * `system`, `user`, `assistant`); other keys of the object are ignored. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Chat takes the options of `generate`; unset sampling options come from the model's
 * `generation_config.json` (see `ModelInfo.chatDefaults`). */
export type ChatOptions = GenerateOptions;

export interface ModelInfo {
  architecture: 'bd3lm' | 'sdar';
  vocabSize: number;
  maskId: number;
  blockSize: number;
  /** Context length, also the KV window. */
  context: number;
  layers: number;
  hidden: number;
  heads: number;
  dtype: 'f32' | 'f16' | 'q8' | 'q4' | string;
  adapter: { name: string; backend: string; deviceType: string };
  features: { shaderF16: boolean; subgroups: boolean };
  /** Live GPU buffer bytes. */
  gpuBytes: number;
  weightBytes?: number;
  cacheBytes?: number;
  source: string;
  /** Whether the model ships a chat template (else `chat` uses ChatML). */
  chatTemplate: boolean;
  /** The sampling defaults of `chat` (from `generation_config.json`, else the generate defaults). */
  chatDefaults: { temperature: number; topP: number; topK: number };
  busy: boolean;
  fromCache: boolean;
}

export interface LoadStats {
  bytes: number;
  ms: number;
  fromCache: boolean;
  files: { name: string; url: string | null; bytes: number; fromCache: boolean }[];
  /** Optional files the directory does not have (e.g. `chat_template.jinja`). */
  absent: string[];
}

/** A model loaded on the browser's WebGPU device. One operation runs at a time: a second call
 * while one runs throws an Error with code `busy`. */
export declare class BlockDiff {
  private constructor();
  /** Whether this browser exposes WebGPU (`navigator.gpu`). */
  static isSupported(): boolean;
  /** Loads the wasm module ahead of time (optional). */
  static init(wasm?: LoadOptions['wasm']): Promise<void>;
  /** The package version. Needs the wasm module (call after `init` or `load`). */
  static readonly version: string;
  /** Deletes the cached model files (default cache `'blockdiff-v1'`). */
  static clearCache(name?: string): Promise<boolean>;
  /** Fetches `config.json`, `model.safetensors`, `tokenizer.json` and, where the directory has
   * them, the chat files (from the Cache API when they are there) and loads the model onto the
   * GPU. Rejects with a clear Error when WebGPU is missing, the adapter lacks a limit, or a file
   * is malformed. */
  static load(source: ModelSource, options?: LoadOptions): Promise<BlockDiff>;

  /** Whether every file came from the cache. */
  readonly fromCache: boolean;
  readonly loadStats: LoadStats;
  readonly busy: boolean;
  readonly disposed: boolean;

  /** Streams a generation. Throws at once on invalid options, a busy or a disposed session. */
  generate(prompt: string, options?: GenerateOptions): GenerationStream;
  /** Answers the last of `messages` with the model's chat template. Earlier turns stay in the
   * KV cache (append each answer as an `assistant` message and only the new part is computed:
   * see `stats.reusedTokens`). Same events as `generate`. Throws at once (code `input`) on
   * messages that are not an array of `{ role, content }` strings or that the template rejects,
   * on invalid options, and on a busy or disposed session. */
  chat(messages: ChatMessage[], options?: ChatOptions): GenerationStream;
  /** The prompt text `chat(messages)` generates after (the chat template applied). */
  applyChatTemplate(messages: ChatMessage[]): string;
  /** Runs a whole generation; resolves to the `done` event. */
  complete(prompt: string, options?: GenerateOptions): Promise<DoneEvent>;
  /** The block-diffusion NLL bound of `text` by Monte-Carlo over mask rates. */
  score(text: string, options?: { samples?: number; seed?: number }): Promise<Score>;
  /** Top-`k` (1..32) predictions at `n` masked positions after `prompt`. */
  probe(prompt: string, n?: number, k?: number): Promise<ProbeRow[]>;
  /** Token ids of `text` (without BOS). */
  encode(text: string): number[];
  /** Text of token ids. */
  decode(ids: ArrayLike<number>): string;
  info(): ModelInfo;
  /** Frees the GPU memory (a running generation is cancelled first); later calls throw. */
  dispose(): void;
}

export default BlockDiff;
