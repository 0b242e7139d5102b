/**
 * The relay's hold on its lease: takes it, renews it on a timer, and knows until when it is valid.
 * The lease is trusted only until `leaseTtlMs - leaseRenewMs / 2` after the request that took or
 * renewed it was sent (the store's clock may be ahead by the request's own time), so the relay
 * stops acting before another relay can take the lease over. `require()` is what every publish and
 * mark asks first.
 */
import type { Logger } from 'pino';
import { PipelineError } from '../schemas/errors.js';
import type { RelayConfig } from './config.js';
import type { Lease, LeaseStore } from './ports.js';

export interface LeaseKeeperParts {
  readonly leases: LeaseStore;
  readonly owner: string;
  readonly config: Pick<RelayConfig, 'leaseTtlMs' | 'leaseRenewMs'>;
  readonly log: Logger;
  /** `cqrs_sync_relay_active`. */
  readonly active: { set(value: number): void };
  /** The lease was taken (a takeover, or a restart of this relay). */
  readonly onAcquired: (lease: Lease) => void;
  /** The lease was lost while held (taken over, or expired before it could be renewed). */
  readonly onLost: () => void;
}

export class LeaseKeeper {
  private lease: Lease | undefined;
  private validUntil = 0;
  private renewTimer: NodeJS.Timeout | undefined;

  constructor(private readonly parts: LeaseKeeperParts) {}

  /** The lease this relay took, valid or not (undefined once lost or released). */
  get current(): Lease | undefined {
    return this.lease;
  }

  /** True while the lease is held and still valid. */
  get valid(): boolean {
    return this.lease !== undefined && Date.now() < this.validUntil;
  }

  /** Tries to take the lease; false while another relay holds it or the store is unavailable. */
  async acquire(): Promise<boolean> {
    const { config, leases, owner, log } = this.parts;
    let lease: Lease | undefined;
    const asked = Date.now();
    try {
      lease = await leases.tryAcquire(owner, config.leaseTtlMs);
    } catch (e) {
      log.warn({ err: e }, 'lease store unavailable');
      return false;
    }
    if (!lease) return false;
    this.lease = lease;
    this.validUntil = asked + config.leaseTtlMs - config.leaseRenewMs / 2;
    this.parts.active.set(1);
    log.info({ token: lease.token }, 'lease acquired: active');
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => void this.renew(), config.leaseRenewMs);
    this.renewTimer.unref();
    this.parts.onAcquired(lease);
    return true;
  }

  /** The valid lease, or a retriable `lease_lost` error: asked before every publish and mark. */
  require(): Lease {
    const lease = this.lease;
    if (!lease || Date.now() >= this.validUntil) {
      throw new PipelineError('lease_lost', 'the relay no longer holds the lease', {
        retriable: true,
      });
    }
    return lease;
  }

  /** Asks the store that `lease` is still the current one; throws `lease_lost` saying `before` what. */
  async confirm(lease: Lease, message: string): Promise<void> {
    if (!(await this.parts.leases.isCurrent(lease))) {
      throw new PipelineError('lease_lost', message, { retriable: true });
    }
  }

  /** Gives the lease up as lost (logged; `onLost` runs). Nothing when none is held. */
  lose(why: string): void {
    if (!this.lease) return;
    this.parts.log.warn({ token: this.lease.token, why }, 'lease lost: standby');
    this.drop();
    this.parts.onLost();
  }

  /** Stops renewing and releases the lease in the store, so a standby takes over at once. */
  async release(): Promise<void> {
    const lease = this.lease;
    this.drop();
    if (lease) await this.parts.leases.release(lease).catch(() => undefined);
  }

  private async renew(): Promise<void> {
    const { config, leases, log } = this.parts;
    const lease = this.lease;
    if (!lease) return;
    const asked = Date.now();
    try {
      if (await leases.renew(lease, config.leaseTtlMs)) {
        if (this.lease === lease) {
          this.validUntil = asked + config.leaseTtlMs - config.leaseRenewMs / 2;
        }
      } else if (this.lease === lease) {
        this.lose('another relay took the lease over');
      }
    } catch (e) {
      log.warn({ err: e }, 'lease renewal failed');
    }
  }

  private drop(): void {
    this.lease = undefined;
    this.validUntil = 0;
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.parts.active.set(0);
  }
}
