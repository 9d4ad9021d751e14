/** Time buckets (UTC) and how long each level of data is kept. */
export const rawRetentionDays = 7;
export const hourlyRetentionDays = 90;
export const dailyRetentionDays = 730;

export const hourMs = 3_600_000;
export const dayMs = 86_400_000;

/** `YYYY-MM-DD` of the UTC day a time falls in. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

export function startOfHour(at: Date): Date {
  return new Date(Math.floor(at.getTime() / hourMs) * hourMs);
}

export function startOfDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / dayMs) * dayMs);
}
