import { LayerError } from '../util/layer-error';

/** What went wrong with the state under stateDir; plugin/store-errors.ts gives each its CNI code. */
export type StoreErrorKind =
  /** A directory or file under stateDir could not be created or written. */
  | 'io'
  /** stateDir (or a subdirectory) is not owned by the expected user or others can write it. */
  | 'untrusted-dir'
  /** A record on disk is unreadable or breaks the rules (InvalidRecordError). */
  | 'invalid-record'
  /** A record about to be written does not validate; nothing was written. */
  | 'record-rejected'
  /** What a record would keep of the network config is larger than a record may be. */
  | 'record-too-large';

export class StoreError extends LayerError<StoreErrorKind> {
  constructor(kind: StoreErrorKind, msg: string) {
    super(kind, msg);
    this.name = 'StoreError';
  }
}
