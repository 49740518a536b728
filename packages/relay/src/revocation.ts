/**
 * The relay's view of the organisation's revocation list (spec/relay.md, "Revocation"). Chains
 * are verified against the org root and the newest list the relay holds. A list past its
 * `nextUpdate` cannot be used by `verifyDeviceChain` (it reports the list as stale); the relay
 * then verifies without it and still refuses every certificate the list names, rather than
 * refusing everyone or forgetting revocations.
 */
import {
  type RevocationList,
  type SenderChain,
  type TrustStore,
  type VerifiedDevice,
  VerifyError,
  VerifyReason,
  verifyDeviceChain,
  verifyRevocationList,
} from '@valise/protocol';
import { idKey } from './keys.js';

export class RevocationState {
  private current: RevocationList | undefined;
  private revoked = new Set<string>();

  constructor(readonly rootPublicKey: Uint8Array) {}

  get list(): RevocationList | undefined {
    return this.current;
  }

  get sequence(): number | undefined {
    return this.current?.sequence;
  }

  /**
   * Verifies a list (organisation, root signature, freshness at `now`, and a sequence above the
   * held one) without adopting it. Throws the VerifyError / DecodeError of the failed check.
   */
  check(bytes: Uint8Array, now: number): RevocationList {
    const min = this.current === undefined ? undefined : this.current.sequence + 1;
    return verifyRevocationList(bytes, this.rootPublicKey, now, min === undefined ? undefined : { minSequence: min });
  }

  /** Adopts a verified list if it is newer than the held one. */
  adopt(list: RevocationList): boolean {
    if (this.current !== undefined && list.sequence <= this.current.sequence) return false;
    this.current = list;
    this.revoked = new Set(list.revoked.map(idKey));
    return true;
  }

  isRevoked(certId: Uint8Array): boolean {
    return this.revoked.has(idKey(certId));
  }

  /** `verifyDeviceChain` against the root and the held list (see the module comment for a stale list). */
  verifyChain(chain: SenderChain, now: number): VerifiedDevice {
    const list = this.current;
    const fresh = list !== undefined && now <= list.nextUpdate;
    const trust: TrustStore = fresh ? { rootPublicKey: this.rootPublicKey, revocationList: list } : { rootPublicKey: this.rootPublicKey };
    const v = verifyDeviceChain(chain, trust, now);
    if (!fresh && list !== undefined) {
      for (const cert of [v.person, v.device, v.office, v.officeHolder]) {
        if (cert !== undefined && this.isRevoked(cert.certId)) {
          throw new VerifyError(VerifyReason.Revoked, `certificate revoked by list ${list.sequence}`);
        }
      }
    }
    return v;
  }
}
