export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

const titles: Record<number, [string, string]> = {
  400: ['Bad Request', 'The server could not comply with the request since it is either malformed or otherwise incorrect.'],
  401: ['Unauthorized', 'This server could not verify that you are authorized to access the document you requested.'],
  404: ['Not Found', 'The resource could not be found.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  500: ['Internal Server Error', 'The server has either erred or is incapable of performing the requested operation.'],
};

/** Heat's error document: the python client and depl both show error.message. */
export function heatError(status: number, type: string, message: string): Reply {
  const [title, explanation] = titles[status] ?? ['Error', ''];
  return { status, body: { code: status, title, explanation, error: { type, message, traceback: null } } };
}
