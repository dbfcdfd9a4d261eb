/** What the window ledger reads of each route that shares a subscription. */
export interface WindowMember {
  readonly unsettledRows: number;
  /** The route's guaranteed share of the window. */
  readonly share: number;
  /** Paused or slow routes keep to their share: what they hold, they cannot give back soon. */
  readonly mayBorrow: boolean;
}

/**
 * The flow-control window of one subscription, shared by its routes. Each route may always hold
 * its share. A route that is running and quick may borrow what the others leave unused, so a
 * burst of one log type uses the whole window; what it borrows comes back within about one
 * request. A paused or slow route never borrows, so it cannot fill a window the others need.
 */
export class WindowShare {
  private readonly members: WindowMember[] = [];

  constructor(readonly window: number) {}

  join(member: WindowMember): void {
    this.members.push(member);
  }

  /** How many unsettled rows `member` may have now. */
  limitFor(member: WindowMember): number {
    if (!member.mayBorrow || this.members.length < 2) return member.share;
    let others = 0;
    for (const other of this.members) if (other !== member) others += other.unsettledRows;
    return Math.max(member.share, this.window - others);
  }
}
