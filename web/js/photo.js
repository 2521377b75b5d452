// A large photo is made smaller on the phone before it is sent. In AWS one request to the API
// carries at most about 4.4 MB of photo (Lambda's 6 MB request limit, after base64), and the
// model looks at far fewer pixels than a phone camera takes; a smaller upload is also quicker
// on a mobile connection. Photos up to SEND_AS_IS_BYTES go exactly as they are.

export const SEND_AS_IS_BYTES = 3 * 1024 * 1024;
export const MAX_SIDE = 2048;

/** The file to upload for `file`: itself, or an upright JPEG at most MAX_SIDE pixels across. */
export async function photoToSend(file) {
  if (file.size <= SEND_AS_IS_BYTES) return file;
  let bitmap;
  try {
    // 'from-image' turns the pixels the way the photo's EXIF says, so the JPEG made here needs
    // no EXIF and the server sees what the person saw.
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return file; // not a picture this browser can read: the server answers why
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
  if (!blob || blob.size >= file.size) return file;
  const name = (file.name || 'photo').replace(/\.[^.]*$/, '') + '.jpg';
  return new File([blob], name, { type: 'image/jpeg', lastModified: file.lastModified });
}
