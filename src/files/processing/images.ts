/**
 * Images made small enough for a vision model or a preview, with sharp
 * (libvips). Only raster formats are read, and the pixel count is checked
 * from the header before any decoding: a few KB of PNG can claim gigapixels.
 * Output carries no EXIF or other metadata (sharp drops it), so no GPS position leaks.
 */
import type { Readable } from 'node:stream';
import sharp, { type Metadata } from 'sharp';
import { ExaiError } from '../../errors.js';

export type ImageOutputFormat = 'webp' | 'jpeg' | 'png';

export interface ResizeOptions {
  maxWidth: number;
  maxHeight: number;
  format: ImageOutputFormat;
  /** 1–100, for webp and jpeg; sharp's default (80) when absent. */
  quality?: number;
  /** Images with more pixels are refused (too_large); MAX_INPUT_PIXELS when absent. */
  maxInputPixels?: number;
  /** A stream input longer than this is refused (too_large); MAX_INPUT_BYTES when absent. */
  maxInputBytes?: number;
}

export interface ResizedImage {
  bytes: Buffer;
  width: number;
  height: number;
  format: ImageOutputFormat;
  size: number;
}

export interface ImageInfo {
  /** sharp's name for the format: jpeg, png, webp, gif, avif, heif or tiff. */
  format: string;
  mimeType: string;
  /** As displayed, after the EXIF orientation. */
  width: number;
  height: number;
  /** Frames of an animation or pages of a TIFF; 1 for still images. */
  pages: number;
  hasAlpha: boolean;
  size: number;
}

/** 64 megapixels (8000×8000) takes a 48 MP phone photo and bounds decoding to ~256 MB of RGBA. */
export const MAX_INPUT_PIXELS = 64_000_000;
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

/** Raster formats users send. SVG is left out: it is a document (XML, scripts, references), not pixels. */
const mimeTypeByFormat: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  heif: 'image/heif',
  tiff: 'image/tiff',
};

const READABLE = 'jpeg, png, webp, gif, avif, heif or tiff';

/** Fits the image inside maxWidth × maxHeight, keeping its aspect ratio and never enlarging it. */
export async function resizeImage(input: Buffer | Readable, options: ResizeOptions): Promise<ResizedImage> {
  const { maxWidth, maxHeight, format } = options;
  positive('maxWidth', maxWidth);
  positive('maxHeight', maxHeight);
  if (!['webp', 'jpeg', 'png'].includes(format)) {
    throw new ExaiError('invalid_argument', `Images can be converted to webp, jpeg or png, not ${String(format)}.`);
  }
  if (options.quality !== undefined && !(Number.isInteger(options.quality) && options.quality >= 1 && options.quality <= 100)) {
    throw new ExaiError('invalid_argument', `Image quality must be a whole number from 1 to 100, not ${options.quality}.`);
  }
  const maxPixels = options.maxInputPixels ?? MAX_INPUT_PIXELS;
  const bytes = Buffer.isBuffer(input) ? input : await readAll(input, options.maxInputBytes ?? MAX_INPUT_BYTES);

  const info = await imageInfo(bytes);
  if (info.width * info.height > maxPixels) {
    throw new ExaiError('too_large', `The image is ${info.width}×${info.height} pixels, more than the ${maxPixels}-pixel limit; send a smaller one.`, {
      details: { width: info.width, height: info.height, maxPixels },
    });
  }

  // limitInputPixels again, in case the pipeline reads a header the metadata call did not.
  let pipeline = sharp(bytes, { limitInputPixels: maxPixels, autoOrient: true }).resize({
    width: maxWidth,
    height: maxHeight,
    fit: 'inside',
    withoutEnlargement: true,
  });
  // JPEG has no alpha: transparent areas become white rather than whatever colour hides under them.
  if (format === 'jpeg') pipeline = pipeline.flatten({ background: '#ffffff' });
  pipeline = format === 'png' ? pipeline.png() : pipeline.toFormat(format, options.quality === undefined ? {} : { quality: options.quality });

  const output = await pipeline.toBuffer({ resolveWithObject: true }).catch((error: unknown) => {
    throw unreadable(error);
  });
  return { bytes: output.data, width: output.info.width, height: output.info.height, format, size: output.info.size };
}

/** What the image is, from its header alone: no pixels are decoded. */
export async function imageInfo(bytes: Buffer): Promise<ImageInfo> {
  if (bytes.length === 0) throw new ExaiError('invalid_argument', 'The image is empty (0 bytes).');
  let metadata: Metadata;
  try {
    // No pixel limit here: the caller is told the size, and decides.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw unreadable(error);
  }
  const mimeType = mimeTypeByFormat[metadata.format];
  if (mimeType === undefined) {
    throw new ExaiError('unsupported_media_type', `The file is ${metadata.format}, which is not read as an image here; send ${READABLE}.`, {
      details: { format: metadata.format },
    });
  }
  return {
    format: metadata.format,
    mimeType,
    width: metadata.autoOrient.width,
    height: metadata.autoOrient.height,
    pages: metadata.pages ?? 1,
    hasAlpha: metadata.hasAlpha,
    size: bytes.length,
  };
}

function positive(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ExaiError('invalid_argument', `${name} must be a whole number of pixels ≥ 1, not ${value}.`);
  }
}

/** sharp reads a stream whole before decoding anyway; reading it here bounds it and keeps its errors ours. */
async function readAll(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > maxBytes) {
      stream.destroy();
      throw new ExaiError('too_large', `The image is larger than the limit of ${maxBytes} bytes.`, { details: { maxBytes } });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, size);
}

function unreadable(error: unknown): ExaiError {
  if (error instanceof ExaiError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (/unsupported image format/i.test(reason)) {
    return new ExaiError('unsupported_media_type', `The file is not an image that can be read; send ${READABLE}.`, { cause: error });
  }
  if (/pixel limit/i.test(reason)) {
    return new ExaiError('too_large', `The image has more pixels than the limit; send a smaller one.`, { cause: error });
  }
  return new ExaiError('invalid_argument', `The image could not be read: it looks damaged (${reason}).`, { cause: error });
}
