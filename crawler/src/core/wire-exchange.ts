/**
 * One HTTP request and its answer as they went over the wire (header names in lower case, as undici gives
 * them): what a WARC request/response record pair holds. The fetcher's exchanges, the job's captures and
 * their redirect hops all carry it.
 */
export interface WireExchange {
  url: string;
  /** When the request was sent (ISO 8601): the WARC-Date of both records. */
  date: string;
  requestHeaders: Array<[string, string]>;
  status: number;
  statusText: string;
  responseHeaders: Array<[string, string]>;
}
