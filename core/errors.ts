// Typed errors: every failure names what was wrong and what was expected.

/** Base class of every error this library throws on purpose. */
export class BitNetError extends Error {
  /** Error class name. */
  override name = "BitNetError";
}

/** A file's bytes do not match its format (truncated, wrong magic, inconsistent sizes). */
export class FormatError extends BitNetError {
  /** Error class name. */
  override name = "FormatError";
  /** `file` names the file; `detail` says what was expected. */
  constructor(readonly file: string, detail: string, options?: ErrorOptions) {
    super(`${file}: ${detail}`, options);
  }
}

/** An option is missing, of the wrong type or out of range. */
export class OptionError extends BitNetError {
  /** Error class name. */
  override name = "OptionError";
  /** `option` names the option; `detail` gives the accepted range. */
  constructor(readonly option: string, detail: string) {
    super(`option ${option}: ${detail}`);
  }
}

/** An input row holds NaN or infinity where finite numbers are required. */
export class NonFiniteError extends BitNetError {
  /** Error class name. */
  override name = "NonFiniteError";
}

/** Shapes of arguments do not fit together. */
export class ShapeError extends BitNetError {
  /** Error class name. */
  override name = "ShapeError";
}

/** A Hugging Face Hub id could not be resolved: a bad id, an HTTP status of the hub, a file missing from the repo or the cache. */
export class HubError extends BitNetError {
  /** Error class name. */
  override name = "HubError";
  /** `id` is the hub id as given; `detail` says what went wrong and what to do; `status` is the hub's HTTP status, when it answered. */
  constructor(readonly id: string, detail: string, readonly status?: number, options?: ErrorOptions) {
    super(`${id}: ${detail}`, options);
  }
}
