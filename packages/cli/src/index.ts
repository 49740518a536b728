/**
 * `@valise/cli`: the `valise` command. The commands are also exported as functions, so that
 * other tools (and the demo) run exactly the code paths of the command line.
 */
export { buildProgram, type CliIo, processIo, runCli, VERSION } from './cli.js';
export { normaliseRelayUrl, RelayClient, type RelayCredentials } from './client.js';
export type { CommandContext } from './context.js';
export { type DemoOptions, type DemoResult, runDemo } from './demo.js';
export { CliError, ExitCode, toCliError } from './errors.js';
export { Home, type HomeState, resolveHomeDir, withHome } from './home.js';
export {
  directoryImport,
  directorySearch,
  inbox,
  read,
  register,
  safetyNumberCmd,
  send,
  status,
} from './messaging.js';
export {
  deviceEnrol,
  officeAdd,
  officeAssign,
  officeExport,
  officeList,
  orgInit,
  personAdd,
  personList,
  revocationPublish,
  revoke,
} from './org.js';
export { defaultPassphraseSource, fixedPassphrases, type PassphraseSource } from './passphrase.js';
export { relayServe } from './relay-serve.js';
export {
  DEFAULT_SCRYPT,
  decodeHeader,
  FilePurpose,
  KeySource,
  openFile,
  openWithPassphrase,
  type ScryptParams,
  SecureFileError,
  sealFile,
  writeFileAtomic,
} from './secure-file.js';
export {
  decodeTracingDocument,
  encodeTracingDocument,
  findRecordsOffice,
  isFingerprinted,
  TRACING_RECORD_CONTENT_TYPE,
  type TraceCommandResult,
  type TracingDocument,
  trace,
  traceList,
} from './tracing.js';
