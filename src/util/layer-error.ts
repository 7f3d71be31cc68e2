/**
 * An error a lower layer (kernel/, dpu/, store/) throws in its own terms: kind says what happened there, never a CNI
 * code. plugin/ maps each kind to the CNI code (src/plugin/layer-errors.ts, dpu-errors.ts, store-errors.ts).
 */
export abstract class LayerError<K extends string = string> extends Error {
  constructor(
    readonly kind: K,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
  }
}
