import { z } from 'zod';
import { IMAGE_TYPES } from './image-type.js';
import type { ImageFile } from '../jobs.js';

const count = z.coerce.number().int().min(0);

/** The query of GET /v1/jobs/:id/files: types (comma-separated), byte and pixel bounds, and paging. */
export const fileFilterSchema = z.strictObject({
  type: z.string().optional().transform((value, ctx) => {
    if (value === undefined || value === '') return undefined;
    const types = value.split(',').map((t) => t.trim().toLowerCase());
    const unknown = types.filter((t) => !(IMAGE_TYPES as readonly string[]).includes(t));
    if (unknown.length > 0) {
      ctx.addIssue({ code: 'custom', message: `unknown type ${unknown.join(', ')}; expected some of ${IMAGE_TYPES.join(', ')}` });
      return z.NEVER;
    }
    return types;
  }),
  minBytes: count.optional(),
  maxBytes: count.optional(),
  minWidth: count.optional(),
  minHeight: count.optional(),
  offset: count.default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export type FileFilter = z.infer<typeof fileFilterSchema>;

/** The files that pass the filter, in the order given. A file of unknown dimensions fails a pixel bound. */
export function filterImageFiles(files: ImageFile[], filter: Partial<Omit<FileFilter, 'offset' | 'limit'>>): ImageFile[] {
  return files.filter((f) =>
    (filter.type === undefined || filter.type.includes(f.type))
    && (filter.minBytes === undefined || f.bytes >= filter.minBytes)
    && (filter.maxBytes === undefined || f.bytes <= filter.maxBytes)
    && (filter.minWidth === undefined || (f.width ?? -1) >= filter.minWidth)
    && (filter.minHeight === undefined || (f.height ?? -1) >= filter.minHeight));
}
